"""The incident's log lines, in the seed's own wording (seeds 000-002), and the simulator's few of its own.

The CVP Call Server's lines carry their Cisco message ids ([id:2006], [id:2007], [id:1]); the PIM's are
its own two.  Lines the seeds do not show (a session opened again) are marked as the simulator's.
"""

from __future__ import annotations

PIM_PORT = 4335
CVP_PORT = 5000


def cvp_partial_service() -> str:
    return ("%CVP_8_5_ICM-1-LOGMSG_ICM_SS_STATE: Shutting down VRU PIM connection. Transition to partial "
            "service. [id:2006]")


def cvp_terminate_connection(sender: str) -> str:
    return (f"%CVP_8_5_MSGBUS-3-MESSAGING_LAYER: ConnectionServer(GED125)::terminateConnection on plugin(GED125) "
            f"with connection(Socket[addr=/{sender},port={PIM_PORT},localport={CVP_PORT}]) due to: Plugin was "
            "stopped by the application [id:1]")


def cvp_missed_heartbeats(missed: int) -> str:
    return (f"%CVP_8_5_ICM-6-LOGMSG_ICM_SS_GENERAL_INFO: Missed {missed} VRU PIM heartbeats. Closing session and "
            "waiting for new connection from PIM. [id:2007]")


def cvp_routine(call: int) -> str:
    return (f"%CVP_8_5_IVR-7-CALL: {{Thrd=http-8000-1}} VXMLManager:generateVXML: CALLGUID={call:032X}")


def pim_receive_error() -> str:
    return ("piml Error receiving data from VRU. Last API Error [10054]: An existing connection was forcibly "
            "closed by the remote host.")


def pim_connection_broken() -> str:
    return "piml TCP connection to VRU has been broken."


def pim_routine(call: int) -> str:
    return f"piml Routing request for call {call} sent to VRU."


def session_open(link: str, transport: str) -> str:
    return f"[cucm-sim] session {link} ({transport}) open: the peripheral is in full service."


def sender_gave_up(link: str, retransmissions: int) -> str:
    return (f"[cucm-sim] session {link}: a segment was resent {retransmissions} times without an acknowledgement; "
            "the sender gives the connection up.")
