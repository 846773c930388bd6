#!/usr/bin/env python3
"""Renders a page (SVG or HTML) in headless Chromium and checks the screenshot's pixels.

Pictures kiln draws (kiln inspect --svg, and later bench/compare --html) are checked as a person would see
them: a real browser renders the file, and the PNG it writes is decoded here (zlib + struct, no imaging
library) and searched for the colours the page must show.

  browser_check.py PAGE --size WxH [--png OUT.png]
      [--expect '#rrggbb[:MIN_PIXELS]']...       a colour covers at least MIN_PIXELS pixels (default 200)
      [--regions '#rrggbb:N' | '#rrggbb:LO-HI']... that many separate areas of the colour (each >= --min-area)
      [--min-ink FRACTION]                       at least this share of pixels is not the background white

Exit codes: 0 every check passed, 1 a check failed, 77 no Chromium on this machine (a test skips),
2 bad arguments or the browser failed. Usable as a module: render(), read_png(), count_color(), regions().
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

SKIP = 77


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def render(page, png, width, height, browser=None, timeout=90):
    """Screenshots PAGE at WIDTHxHEIGHT into PNG; raises RuntimeError with the browser's output on failure."""
    browser = browser or find_chromium()
    if not browser:
        raise FileNotFoundError("chromium not found")
    url = "file://" + os.path.abspath(page)
    with tempfile.TemporaryDirectory(prefix="kiln-chromium-") as profile:
        cmd = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--user-data-dir=" + profile, "--force-device-scale-factor=1",
               "--screenshot=" + os.path.abspath(png), "--window-size=%d,%d" % (width, height), url]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="disabled:")
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, env=env)
    if not os.path.exists(png) or os.path.getsize(png) == 0:
        raise RuntimeError("chromium wrote no screenshot (exit %d):\n%s" %
                           (proc.returncode, proc.stdout.decode(errors="replace")[-2000:]))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path):
    """(width, height, rows): rows[y] is a bytes object of RGB triples. 8-bit RGB/RGBA/grey, not interlaced."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG" % path)
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError("%s: PNG of depth %d colour type %d interlace %d is not supported" %
                         (path, depth, color, interlace))
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                upleft = prev[i - channels] if i >= channels else 0
                line[i] = (line[i] + _paeth(left, prev[i], upleft)) & 0xFF
        elif kind != 0:
            raise ValueError("%s: bad PNG filter %d in row %d" % (path, kind, y))
        prev = line
        if channels == 3:
            rows.append(bytes(line))
        elif channels == 4:
            rows.append(bytes(b for i, b in enumerate(line) if i % 4 != 3))
        else:
            grey = line[::channels]
            rows.append(bytes(v for g in grey for v in (g, g, g)))
    return width, height, rows


def parse_color(text):
    text = text.strip().lstrip("#")
    if len(text) != 6:
        raise ValueError("colour %r: expected #rrggbb" % text)
    return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))


def _mask(image, rgb, tol):
    width, height, rows = image
    r0, g0, b0 = rgb
    hits = set()
    for y, row in enumerate(rows):
        for x in range(width):
            r, g, b = row[3 * x], row[3 * x + 1], row[3 * x + 2]
            if abs(r - r0) <= tol and abs(g - g0) <= tol and abs(b - b0) <= tol:
                hits.add((x, y))
    return hits


def count_color(image, rgb, tol=3):
    return len(_mask(image, rgb, tol))


def regions(image, rgb, tol=3, min_area=400):
    """Sizes of the 4-connected areas of the colour that cover at least min_area pixels, largest first."""
    left = _mask(image, rgb, tol)
    sizes = []
    while left:
        stack = [left.pop()]
        size = 0
        while stack:
            x, y = stack.pop()
            size += 1
            for n in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if n in left:
                    left.remove(n)
                    stack.append(n)
        if size >= min_area:
            sizes.append(size)
    return sorted(sizes, reverse=True)


def ink(image, tol=8):
    """Share of pixels that are not (near) white."""
    width, height, rows = image
    white = 255 - tol
    plain = sum(1 for row in rows for x in range(width)
                if row[3 * x] >= white and row[3 * x + 1] >= white and row[3 * x + 2] >= white)
    return 1.0 - plain / float(width * height)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("page")
    ap.add_argument("--size", required=True, help="WxH of the browser window")
    ap.add_argument("--png", help="keep the screenshot here")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--regions", action="append", default=[])
    ap.add_argument("--min-area", type=int, default=400)
    ap.add_argument("--min-ink", type=float, default=0.0)
    ap.add_argument("--tolerance", type=int, default=3, help="per channel, for colour matches")
    a = ap.parse_args(argv)
    if not find_chromium():
        print("SKIP: chromium is not installed (Debian: apt-get install chromium; scripts/setup.sh installs it)")
        return SKIP
    try:
        width, height = (int(v) for v in a.size.lower().split("x"))
    except ValueError:
        print("--size %r: expected WxH" % a.size)
        return 2
    png = a.png or tempfile.mktemp(suffix=".png", prefix="kiln-shot-")
    try:
        render(a.page, png, width, height)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print("browser failed: %s" % e)
        return 2
    image = read_png(png)
    failures = []
    print("screenshot %s: %dx%d" % (png, image[0], image[1]))
    if a.min_ink:
        share = ink(image)
        print("  ink %.3f (want >= %.3f)" % (share, a.min_ink))
        if share < a.min_ink:
            failures.append("the page is (nearly) blank: %.3f of its pixels are not white" % share)
    for spec in a.expect:
        color, _, least = spec.partition(":")
        n = count_color(image, parse_color(color), a.tolerance)
        want = int(least or 200)
        print("  %s: %d pixels (want >= %d)" % (color, n, want))
        if n < want:
            failures.append("colour %s covers %d pixels, expected at least %d" % (color, n, want))
    for spec in a.regions:
        color, _, count = spec.rpartition(":")
        lo, _, hi = count.partition("-")
        lo, hi = int(lo), int(hi or lo)
        sizes = regions(image, parse_color(color), a.tolerance, a.min_area)
        print("  %s: %d regions of >= %d pixels %s (want %d..%d)" % (color, len(sizes), a.min_area, sizes[:12], lo, hi))
        if not lo <= len(sizes) <= hi:
            failures.append("colour %s forms %d separate areas, expected %d..%d" % (color, len(sizes), lo, hi))
    if a.png is None:
        os.unlink(png)
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
