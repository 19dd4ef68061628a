"""Kernel output to the browser: policy rate limits and a cap on one output's size.

Jupyter's own rate limit counts only ``stream`` bytes, so one ``display_data`` message
can carry any amount of data (an "image" that is really a file). This connection class
withholds any single IOPub message larger than the policy's ``max_output_bytes`` and
tells the researcher on stderr instead; the rate limits come from the policy, not from
configuration.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from .policy import OutputRules

RULES_SETTING = "cleanroom_workspace_output_rules"


class CleanroomChannelsConnection(ZMQChannelsWebsocketConnection):
    """The kernel websocket connection used in clean-room workspaces."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        rules: OutputRules = self.websocket_handler.settings[RULES_SETTING]
        self.max_output_bytes = rules.max_output_bytes
        # Set after configuration is applied, so that config cannot loosen them.
        self.limit_rate = True
        self.iopub_msg_rate_limit = rules.iopub_msg_rate_limit
        self.iopub_data_rate_limit = rules.iopub_data_rate_limit
        self.rate_limit_window = rules.rate_limit_window

    def _limit_rate(self, channel: Any, msg: Any, msg_list: Any) -> bool:
        if channel == "iopub":
            size = sum(len(part) for part in msg_list)
            if size > self.max_output_bytes:
                msg["header"] = self.get_part("header", msg["header"], msg_list)
                msg["parent_header"] = self.get_part(
                    "parent_header", msg["parent_header"], msg_list
                )
                msg_type = msg["header"].get("msg_type", "?")
                self.write_stderr(
                    f"[clean room] An output of {size} bytes ({msg_type}) was withheld: "
                    f"outputs larger than {self.max_output_bytes} bytes are not sent to the "
                    "browser. Write large results to a file in your work folder and request "
                    "a release.",
                    msg["parent_header"],
                )
                return True
        return bool(super()._limit_rate(channel, msg, msg_list))
