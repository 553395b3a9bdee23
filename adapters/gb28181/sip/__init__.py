"""A small, lenient SIP stack on asyncio, sized for GB/T 28181 signalling."""
