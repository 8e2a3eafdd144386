#!/usr/bin/python3
"""Golden TensorBoard event file for core/runs/TensorBoardEventSink, written independently.

Everything is encoded here by hand from the published formats, without TensorFlow, TensorBoard
or libprotobuf (none is installed here):
  * TFRecord framing (tensorboard/summary/writer/record_writer.py): u64 length, u32 masked
    CRC-32C of the length bytes, data, u32 masked CRC-32C of the data, little-endian;
  * CRC-32C bit by bit (reflected polynomial 0x82F63B78), masked as
    ((crc >> 15 | crc << 17) + 0xA282EAD8) mod 2^32;
  * Event / Summary / HistogramProto in the protobuf wire format (tensorboard/compat/proto),
    proto3 rules: singular scalars equal to zero are left out, oneof members always written;
  * histograms binned with numpy.histogram(finite values, bins=30) and laid out as
    torch.utils.tensorboard.summary.make_histogram does (empty end bins trimmed, one empty
    bucket in front carrying the left edge); sum and sum of squares added left to right.

Writes
    tests/fixtures/runs/tensorboard_inputs.json   the events to feed the sink and the clock
                                                  readings it must take, in order
    tests/fixtures/runs/expected.tfevents         the bytes the sink must produce
The C++ test feeds the same inputs to the sink with an injected clock and compares the files
byte for byte.

Regenerate:
    /usr/bin/python3 tests/reference/tensorboard_reference.py
Print the records of any event file (for example a real run's):
    /usr/bin/python3 tests/reference/tensorboard_reference.py --dump RUN/events.out.tfevents.*
"""

import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "fixtures", "runs")
BINS = 30


# --- CRC-32C -------------------------------------------------------------------------------

def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return (header + struct.pack("<I", masked_crc(header)) + data +
            struct.pack("<I", masked_crc(data)))


# --- protobuf wire format ------------------------------------------------------------------

def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 negatives as two's complement
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def f_double(field, value):
    return key(field, 1) + struct.pack("<d", value)


def f_float(field, value):
    return key(field, 5) + struct.pack("<f", value)


def f_varint(field, value):
    return key(field, 0) + varint(value)


def f_bytes(field, data: bytes):
    return key(field, 2) + varint(len(data)) + data


def f_packed_doubles(field, values):
    return f_bytes(field, b"".join(struct.pack("<d", v) for v in values))


def is_default(value: float) -> bool:
    return value == 0.0 and math.copysign(1.0, value) > 0


def event(wall_time, step, what: bytes) -> bytes:
    out = b""
    if not is_default(wall_time):
        out += f_double(1, wall_time)
    if step != 0:
        out += f_varint(2, step)
    return out + what


def file_version_event(wall_time):
    return event(wall_time, 0, f_bytes(3, b"brain.Event:2"))


def scalars_event(wall_time, step, values):
    summary = b""
    for tag in sorted(values):  # std::map order: byte-wise ascending
        summary += f_bytes(1, f_bytes(1, tag.encode()) + f_float(2, values[tag]))
    return event(wall_time, step, f_bytes(5, summary))


def make_histogram(values):
    finite = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return None
    counts, limits = np.histogram(finite, bins=BINS)
    # torch.utils.tensorboard.summary.make_histogram's layout.
    cum_counts = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(cum_counts, [0, cum_counts[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    total, squares = 0.0, 0.0
    for v in finite.tolist():
        total += v
        squares += v * v
    return {
        "min": float(min(finite.tolist())), "max": float(max(finite.tolist())),
        "num": float(finite.size), "sum": total, "sum_squares": squares,
        "bucket_limit": [float(x) for x in limits], "bucket": [float(c) for c in counts],
    }


def histogram_event(wall_time, step, tag, h):
    histo = b""
    for field, name in enumerate(["min", "max", "num", "sum", "sum_squares"], start=1):
        if not is_default(h[name]):
            histo += f_double(field, h[name])
    if h["bucket_limit"]:
        histo += f_packed_doubles(6, h["bucket_limit"])
    if h["bucket"]:
        histo += f_packed_doubles(7, h["bucket"])
    value = f_bytes(1, tag.encode()) + f_bytes(5, histo)
    return event(wall_time, step, f_bytes(5, f_bytes(1, value)))


# --- reading (for --dump) ------------------------------------------------------------------

def read_records(data: bytes):
    at = 0
    while at + 12 <= len(data):
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if length_crc != masked_crc(header):
            raise ValueError(f"bad length CRC at byte {at}")
        if at + 12 + length + 4 > len(data):
            print(f"truncated record at byte {at} (a killed writer); stopping")
            return
        payload = data[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        if data_crc != masked_crc(payload):
            raise ValueError(f"bad data CRC at byte {at}")
        yield payload
        at += 16 + length


def fields(data: bytes):
    at = 0
    while at < len(data):
        k, shift = 0, 0
        while True:
            b = data[at]
            at += 1
            k |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        field, wire = k >> 3, k & 7
        if wire == 0:
            v, shift = 0, 0
            while True:
                b = data[at]
                at += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
        elif wire == 1:
            v = data[at:at + 8]
            at += 8
        elif wire == 5:
            v = data[at:at + 4]
            at += 4
        elif wire == 2:
            n, shift = 0, 0
            while True:
                b = data[at]
                at += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            v = data[at:at + n]
            at += n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, v


def dump(path):
    with open(path, "rb") as f:
        data = f.read()
    for payload in read_records(data):
        wall, step, parts = 0.0, 0, []
        for field, v in fields(payload):
            if field == 1:
                (wall,) = struct.unpack("<d", v)
            elif field == 2:
                step = v
            elif field == 3:
                parts.append(f"file_version={v.decode()}")
            elif field == 5:
                for _, value in fields(v):
                    tag, what = "", ""
                    for vf, vv in fields(value):
                        if vf == 1:
                            tag = vv.decode()
                        elif vf == 2:
                            what = repr(struct.unpack("<f", vv)[0])
                        elif vf == 5:
                            h = dict(fields(vv))
                            n = struct.unpack("<d", h[3])[0] if 3 in h else 0.0
                            what = f"histogram(num={n:g}, buckets={len(h.get(7, b'')) // 8})"
                    parts.append(f"{tag}={what}")
        print(f"wall_time={wall:.3f} step={step} " + " ".join(parts))


# --- the golden case -----------------------------------------------------------------------

def as_json(v):
    return v if math.isfinite(v) else str(v)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--dump":
        dump(sys.argv[2])
        return
    rng = np.random.default_rng(20240501)
    d_sae = 64
    inputs = []
    # Scalars as the trainer logs them (SAELens names), at steps 0 (left out of the Event),
    # 5 and 130 (a two-byte varint); zero, negative, tiny, huge, NaN and Inf values.
    inputs.append({"kind": "metrics", "step": 0, "values": {
        "losses/mse_loss": 1.2345678901234, "losses/l1_loss": 0.0,
        "details/current_learning_rate": 4e-5, "details/n_training_tokens": 4096.0}})
    inputs.append({"kind": "histogram", "step": 0, "name": "weights/W_dec_norms",
                   "values": (rng.normal(0.1, 0.01, d_sae)).tolist()})
    inputs.append({"kind": "metrics", "step": 5, "values": {
        "losses/mse_loss": 0.75, "losses/overall_loss": -1.5e-7,
        "metrics/explained_variance": 0.123456789, "sparsity/dead_features": 3.0,
        "details/n_training_tokens": 3.0e12}})
    inputs.append({"kind": "metrics", "step": 6, "values": {}})  # nothing logged: no event
    density = rng.uniform(0, 0.1, d_sae)
    density[:5] = 0.0
    inputs.append({"kind": "histogram", "step": 130, "name": "plots/feature_density_line_chart",
                   "values": np.log10(density + 1e-10).tolist()})
    inputs.append({"kind": "metrics", "step": 130, "values": {
        "losses/mse_loss": float("nan"), "losses/l1_loss": float("inf"),
        "metrics/l0": 17.0}})
    # Non-finite values are left out of a histogram; one value gets numpy's (v-0.5, v+0.5].
    inputs.append({"kind": "histogram", "step": 131, "name": "weights/W_dec_norms",
                   "values": [1.0, float("nan"), float("inf")]})
    # Only NaN: nothing to draw, no event.
    inputs.append({"kind": "histogram", "step": 132, "name": "weights/W_dec_norms",
                   "values": [float("nan")]})
    inputs.append({"kind": "histogram", "step": 200, "name": "weights/W_dec_norms",
                   "values": (rng.normal(1.0, 0.2, 200) * rng.choice([1, 10], 200)).tolist()})

    clock = []
    tick = [1714563000.0625]

    def now():
        t = tick[0]
        tick[0] += 0.75
        clock.append(t)
        return t

    out = record(file_version_event(now()))
    for item in inputs:
        if item["kind"] == "metrics":
            if item["values"]:
                out += record(scalars_event(now(), item["step"], item["values"]))
        else:
            h = make_histogram(item["values"])
            if h is not None:
                out += record(histogram_event(now(), item["step"], item["name"], h))

    for item in inputs:
        if item["kind"] == "metrics":
            item["values"] = {k: as_json(v) for k, v in item["values"].items()}
        else:
            item["values"] = [as_json(v) for v in item["values"]]
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "tensorboard_inputs.json"), "w") as f:
        json.dump({"bins": BINS, "clock": clock, "events": inputs}, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT_DIR, "expected.tfevents"), "wb") as f:
        f.write(out)
    print(f"wrote {len(out)} bytes, {len(clock)} records")


if __name__ == "__main__":
    main()
