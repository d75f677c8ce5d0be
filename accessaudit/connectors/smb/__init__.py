"""SMB file shares (``kind = "smb"``): ``client`` (smbprotocol session, one compound read per
folder), ``srvsvc`` (share permissions over DCE/RPC), ``walk`` (breadth-first to a depth),
``fold`` (rights named, inherited entries folded to where they are set, with their reach),
``collect`` (the tables and each share's completeness)."""
