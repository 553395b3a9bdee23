"""Dialog state for INVITE sessions and SUBSCRIBE subscriptions (RFC 3261 §12, RFC 6665)."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.gb28181.sip.endpoint import SipEndpoint
from adapters.gb28181.sip.message import SipMessage, parse_name_addr
from adapters.gb28181.sip.transport import Address


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    remote_target: str
    peer: Address
    local_cseq: int
    remote_cseq: int
    kind: str = "INVITE"
    route_set: list[str] = field(default_factory=list)
    terminated: bool = False

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_uac(cls, request: SipMessage, response: SipMessage, peer: Address) -> Dialog:
        """Dialog created by our request's 2xx."""
        frm = request.from_
        to = response.to
        contact = response.headers.get("Contact")
        target = str(parse_name_addr(contact).uri) if contact else str(request.uri)
        routes = list(reversed(response.headers.get_all("Record-Route")))
        return cls(
            call_id=request.call_id,
            local_tag=frm.tag or "",
            remote_tag=to.tag or "",
            local_uri=f"<{frm.uri}>",
            remote_uri=f"<{to.uri}>",
            remote_target=target,
            peer=peer,
            local_cseq=request.cseq[0],
            remote_cseq=0,
            kind=request.method or "INVITE",
            route_set=routes,
        )

    @classmethod
    def from_uas(cls, request: SipMessage, local_tag: str, peer: Address) -> Dialog:
        """Dialog created by our 2xx to a peer's request."""
        frm = request.from_
        to = request.to
        contact = request.headers.get("Contact")
        target = str(parse_name_addr(contact).uri) if contact else str(frm.uri)
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=frm.tag or "",
            local_uri=f"<{to.uri}>",
            remote_uri=f"<{frm.uri}>",
            remote_target=target,
            peer=peer,
            local_cseq=0,
            remote_cseq=request.cseq[0],
            kind=request.method or "INVITE",
            route_set=request.headers.get_all("Record-Route"),
        )

    def matches(self, msg: SipMessage) -> bool:
        if msg.call_id != self.call_id:
            return False
        if msg.is_request:
            return (msg.to.tag or "") == self.local_tag and (msg.from_.tag or "") == self.remote_tag
        return (msg.from_.tag or "") == self.local_tag

    def create_request(
        self,
        endpoint: SipEndpoint,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> SipMessage:
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        hdrs = [("Route", r) for r in self.route_set] + list(extra or [])
        return endpoint.build_request(
            method,
            self.remote_target,
            dest=self.peer,
            from_=f"{self.local_uri};tag={self.local_tag}",
            to=f"{self.remote_uri};tag={self.remote_tag}",
            call_id=self.call_id,
            cseq=cseq,
            body=body,
            content_type=content_type,
            extra=hdrs,
        )

    def ack(self, endpoint: SipEndpoint, invite_cseq: int) -> SipMessage:
        return self.create_request(endpoint, "ACK", cseq=invite_cseq)
