"""Image files damaged in the ways clients send them: cut short, or complete but corrupt inside."""


def damaged_png(encoded: bytes) -> bytes:
    """The PNG file `encoded`, complete, with its compressed pixel data (the first IDAT
    chunk's, after the 2-byte zlib header) zeroed: every chunk is still there, so only a
    decoder can tell."""
    data = bytearray(encoded)
    chunk_type = data.index(b"IDAT")
    length = int.from_bytes(data[chunk_type - 4:chunk_type], "big")
    start, end = chunk_type + 4 + 2, chunk_type + 4 + length
    data[start:end] = bytes(end - start)
    return bytes(data)


def cut_short(encoded: bytes) -> bytes:
    """The first 40 bytes of an image file: its header, no image data."""
    return encoded[:40]
