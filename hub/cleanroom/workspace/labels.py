"""Labels on every workspace container: how the hub, the CLI and the enforcer find them."""

LABEL_USER = "cleanroom.user"
LABEL_PROJECT = "cleanroom.project"
LABEL_IMAGE = "cleanroom.image"
LABEL_KIND = "cleanroom.kind"
LABEL_INSTANCE = "cleanroom.instance"
