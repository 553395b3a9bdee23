"""GB/T 28181 adapter: own asyncio SIP stack, MANSCDP, SDP, upper-platform and cascade roles.

Signalling lives in ``adapters.gb28181.sip`` plus ``manscdp``, ``sdp``, ``upper`` and ``cascade``;
media (RTP/PS) is plugged in through the protocols in ``adapters.gb28181.media_api``.
"""
