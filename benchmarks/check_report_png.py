#!/usr/bin/env python3
"""Checks a screenshot of a trade-off report page (report.html rendered by headless Chromium).

A page "as a person sees it" has: something drawn at all (not one flat colour), the table
(the teacher row's background #fff8e1 over a row's area), both plots (their grid lines
#e4e4e4 over many pixels, the front and front points in #d9480f, other points in #1c7ed6
when some variant is off the front). Colours are matched within a small tolerance (anti-
aliasing changes edge pixels only; fills and straight lines keep their exact colour).

Standard library only: a PNG reader for 8-bit RGB/RGBA non-interlaced images (what
Chromium writes). Prints one line of counts; exit 1 with the reason when a check fails.

Usage: check_report_png.py PAGE.png [--teacher] [--off-front]
  --teacher    the report names a teacher (its row must be highlighted)
  --off-front  some variant is off the Pareto front (blue points must show)
"""
import struct
import sys
import zlib

# Pixels of each colour a rendered page must have at least; a table row is ~1000 px wide
# and 20 px tall, a plot's grid ~10 lines of ~600 px, a front point ~70 px.
MIN_TEACHER_ROW = 4000
MIN_GRID = 2000
MIN_FRONT = 150
MIN_OFF_FRONT = 40
# Per-channel tolerance of a colour match.
TOLERANCE = 6


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG file")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise SystemExit(f"{path}: unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    width, height, bpp, rows = read_png(args[0])
    targets = {"teacher_row": (0xFF, 0xF8, 0xE1), "grid": (0xE4, 0xE4, 0xE4), "front": (0xD9, 0x48, 0x0F),
               "off_front": (0x1C, 0x7E, 0xD6)}
    counts = dict.fromkeys(targets, 0)
    colours = set()
    for line in rows:
        for x in range(0, width * bpp, bpp):
            px = (line[x], line[x + 1], line[x + 2])
            if px == (255, 255, 255):
                continue
            if len(colours) < 64:
                colours.add(px)
            for name, t in targets.items():
                if abs(px[0] - t[0]) <= TOLERANCE and abs(px[1] - t[1]) <= TOLERANCE and abs(px[2] - t[2]) <= TOLERANCE:
                    counts[name] += 1
    print(f"{args[0]}: {width}x{height}, " + ", ".join(f"{k} {v} px" for k, v in counts.items()))
    problems = []
    if len(colours) < 8:
        problems.append(f"the page is nearly blank ({len(colours)} colours)")
    if counts["grid"] < MIN_GRID:
        problems.append(f"plot grid lines: {counts['grid']} px < {MIN_GRID} (plots missing or empty)")
    if counts["front"] < MIN_FRONT:
        problems.append(f"Pareto front: {counts['front']} px < {MIN_FRONT}")
    if "--teacher" in args and counts["teacher_row"] < MIN_TEACHER_ROW:
        problems.append(f"teacher row: {counts['teacher_row']} px < {MIN_TEACHER_ROW} (table missing)")
    if "--off-front" in args and counts["off_front"] < MIN_OFF_FRONT:
        problems.append(f"points off the front: {counts['off_front']} px < {MIN_OFF_FRONT}")
    if problems:
        print("FAIL: " + "; ".join(problems))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
