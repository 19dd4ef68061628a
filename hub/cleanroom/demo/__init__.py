"""Demo content for a clean room on one machine: the synthetic press-line data set."""
