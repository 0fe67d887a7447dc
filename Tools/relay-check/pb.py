"""A small protobuf (proto3 wire format) encoder and total decoder.

Written from the protobuf encoding documentation (varint, wire types 0/1/2/5, field keys
`(number << 3) | wire_type`). Messages are described by schemas: a dict field name ->
(number, kind) with kind one of 'uint' (varint), 'bool', 'bytes', 'string', a nested schema
dict (a message), or ('repeated', kind). Unknown fields are skipped on decode, as proto3 says.
"""


class DecodeError(Exception):
    pass


def enc_varint(v):
    if v < 0:
        v += 1 << 64  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def dec_varint(data, i):
    shift = 0
    value = 0
    for n in range(10):
        if i >= len(data):
            raise DecodeError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
    raise DecodeError("varint longer than 10 bytes")


def key(number, wire):
    return enc_varint((number << 3) | wire)


def raw_fields(data):
    """[(number, wire_type, value)] in order; value is int for 0/1/5, bytes for 2."""
    out = []
    i = 0
    data = bytes(data)
    while i < len(data):
        k, i = dec_varint(data, i)
        number, wire = k >> 3, k & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == 0:
            v, i = dec_varint(data, i)
        elif wire == 1:
            if i + 8 > len(data):
                raise DecodeError("truncated fixed64")
            v = int.from_bytes(data[i:i + 8], "little")
            i += 8
        elif wire == 5:
            if i + 4 > len(data):
                raise DecodeError("truncated fixed32")
            v = int.from_bytes(data[i:i + 4], "little")
            i += 4
        elif wire == 2:
            n, i = dec_varint(data, i)
            if i + n > len(data):
                raise DecodeError("truncated length-delimited field")
            v = data[i:i + n]
            i += n
        else:
            raise DecodeError(f"wire type {wire}")
        out.append((number, wire, v))
    return out


def _enc_value(number, kind, value):
    if isinstance(kind, dict):
        body = encode(kind, value)
        return key(number, 2) + enc_varint(len(body)) + body
    if kind in ("uint", "int", "enum"):
        return key(number, 0) + enc_varint(int(value))
    if kind == "bool":
        return key(number, 0) + enc_varint(1 if value else 0)
    if kind == "fixed64":
        return key(number, 1) + int(value).to_bytes(8, "little")
    if kind == "bytes":
        value = bytes(value)
        return key(number, 2) + enc_varint(len(value)) + value
    if kind == "string":
        value = value.encode("utf-8")
        return key(number, 2) + enc_varint(len(value)) + value
    raise ValueError(kind)


def encode(schema, msg):
    """Encode dict `msg` with `schema`; fields absent or None are omitted (proto3 defaults
    are omitted too, as a proto3 encoder does). Fields are written in field-number order."""
    out = bytearray()
    for name, (number, kind) in sorted(schema.items(), key=lambda kv: kv[1][0]):
        if name not in msg or msg[name] is None:
            continue
        value = msg[name]
        if isinstance(kind, tuple) and kind[0] == "repeated":
            if kind[1] in ("uint", "int", "enum", "bool"):
                if value:  # packed, as a proto3 encoder writes repeated scalars
                    body = b"".join(enc_varint(int(item)) for item in value)
                    out += key(number, 2) + enc_varint(len(body)) + body
            else:
                for item in value:
                    out += _enc_value(number, kind[1], item)
            continue
        if not isinstance(kind, dict) and value in (0, b"", "", False) and not isinstance(value, dict):
            continue
        out += _enc_value(number, kind, value)
    return bytes(out)


def _dec_value(kind, wire, v):
    if isinstance(kind, dict):
        if wire != 2:
            raise DecodeError("message field with wrong wire type")
        return decode(kind, v)
    if kind in ("uint", "int", "enum", "bool"):
        if wire != 0:
            raise DecodeError("varint field with wrong wire type")
        return bool(v) if kind == "bool" else v
    if kind == "fixed64":
        if wire != 1:
            raise DecodeError("fixed64 with wrong wire type")
        return v
    if kind in ("bytes", "string"):
        if wire != 2:
            raise DecodeError("bytes field with wrong wire type")
        if kind == "string":
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("invalid UTF-8")
        return v
    raise ValueError(kind)


def decode(schema, data):
    """Decode to a dict holding only the fields present (the last one wins for singular
    fields; a nested message appearing twice is merged as protobuf does, here simplified
    to the last one)."""
    by_number = {number: (name, kind) for name, (number, kind) in schema.items()}
    msg = {}
    for number, wire, v in raw_fields(data):
        if number not in by_number:
            continue
        name, kind = by_number[number]
        if isinstance(kind, tuple) and kind[0] == "repeated":
            items = msg.setdefault(name, [])
            if wire == 2 and kind[1] in ("uint", "int", "enum", "bool"):
                i = 0  # packed (proto3's default for repeated scalars)
                while i < len(v):
                    item, i = dec_varint(v, i)
                    items.append(bool(item) if kind[1] == "bool" else item)
            else:
                items.append(_dec_value(kind[1], wire, v))
        else:
            msg[name] = _dec_value(kind, wire, v)
    return msg
