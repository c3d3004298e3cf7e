"""SIP dial-in: phones call a PJSIP endpoint and join a room's meeting by its PIN."""
