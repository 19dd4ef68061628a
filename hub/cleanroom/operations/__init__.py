"""Operations around running workspaces: enforcement of end dates, status, hub wiring."""
