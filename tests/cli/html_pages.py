#!/usr/bin/env python3
"""Checks a page kiln bench --html or kiln compare --html wrote against the JSON of the same run.

  html_pages.py bench|sweep|compare PAGE.html REPORT.json

The page must be self-contained (no scripts, no links or sources to load, balanced tags) and draw what the
report holds: bench, the percentiles, one histogram bar per non-empty bin, one bar per profiled layer in
order; sweep, one bar and one histogram per point; compare, one bar per output and layer, green within the
rule and red over it, the first divergence framed. Prints "ok" or fails an assertion.
"""
import json
import sys
from html.parser import HTMLParser

VOID = {"meta", "br", "hr", "img", "input", "link"}  # HTML's; SVG elements close themselves (<rect/>)
GREEN, RED = "#59a14f", "#e15759"  # tools/kiln/compare_html.h


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children, self.text = [], ""

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def find_all(self, tag, **attrs):
        return [n for n in self.walk() if n.tag == tag and all(n.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def all_text(self):
        return self.text + "".join(c.all_text() for c in self.children)


class Tree(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", [], None)
        self.cur = self.root
        self.problems = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") or (k.startswith("on")):
                self.problems.append("<%s %s=%r>: a page must not load or run anything" % (tag, k, v))
        if tag in ("script", "iframe", "object", "embed", "link", "img"):
            self.problems.append("<%s> in a self-contained page" % tag)
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.cur = self.cur.parent

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.cur.tag != tag:
            self.problems.append("</%s> closes <%s>" % (tag, self.cur.tag))
            return
        self.cur = self.cur.parent

    def handle_data(self, data):
        self.cur.text += data


def parse(path):
    t = Tree()
    text = open(path, encoding="utf-8").read()
    t.feed(text)
    t.close()
    assert not t.problems, t.problems[:5]
    assert t.cur is t.root, "unclosed <%s>" % t.cur.tag
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', ""), "a network reference"
    assert text.startswith("<!DOCTYPE html>"), text[:40]
    return t.root


def bars(container):
    return [(g.attrs["data-label"], g) for g in container.find_all("g", class_="bar")]


def bar_fill(g):
    rects = g.find_all("rect")
    return rects[0].attrs["fill"] if rects else None


def one(nodes, what):
    assert len(nodes) == 1, "%d %s" % (len(nodes), what)
    return nodes[0]


def check_latency(r, page_text):
    l = r["latency_ms"]
    row = "".join("%.4f" % l[k] for k in ("median", "mean", "p90", "p95", "p99", "min", "max"))
    assert row in page_text, ("percentiles not on the page", row)


def check_histogram(svg, r):
    counts = r["latency_histogram"]["counts"]
    drawn = svg.find_all("rect")
    assert len(drawn) == sum(1 for c in counts if c > 0), (len(drawn), counts)
    titles = sorted(int(rc.find_all("title")[0].all_text()) for rc in drawn)
    assert titles == sorted(c for c in counts if c > 0), (titles, counts)
    assert len(svg.find_all("line", class_="marker")) == 3


def bench(page, report):
    root, r = parse(page), json.load(open(report))
    text = "".join(td.all_text() for td in root.find_all("td"))
    check_latency(r, text)
    check_histogram(one(root.find_all("svg", class_="histogram"), "histograms"), r)
    layers = r["profile"]["layers"][:60]
    drawn = bars(one(root.find_all("div", class_="layers"), "layer charts"))
    assert [d[0] for d in drawn] == ["%s (%s)" % (l["name"], l["op"]) for l in layers], drawn
    assert all(bar_fill(g) == "#f58518" for _, g in drawn)  # a CPU engine has no fallback layers
    # The slowest layer has the longest bar.
    widths = [float(g.find_all("rect")[0].attrs["width"]) for _, g in drawn]
    assert widths[0] == max(widths), widths
    manifest = one(root.find_all("div", class_="manifest"), "manifests").all_text()
    for key in ("checksum", "profiles", "format_version"):
        assert key in manifest, key
    assert r["engine"]["path"] in one(root.find_all("h1"), "titles").all_text()


def sweep(page, report):
    root, rows = parse(page), json.load(open(report))
    assert isinstance(rows, list) and len(rows) == 3, len(rows)
    drawn = bars(one(root.find_all("div", class_="sweep"), "sweep charts"))
    assert [d[0] for d in drawn] == ["profile 0 %s" % p for p in ("min", "opt", "max")], drawn
    assert all(bar_fill(g) == "#54a24b" for _, g in drawn)
    svgs = root.find_all("svg", class_="histogram")
    assert len(svgs) == 3
    text = "".join(td.all_text() for td in root.find_all("td"))
    for svg, r in zip(svgs, rows):
        check_histogram(svg, r)
        check_latency(r, text)


def compare(page, report):
    root, j = parse(page), json.load(open(report))
    assert ("FAIL" if not j["pass"] else "PASS") in one(root.find_all("h1"), "titles").all_text()
    outputs_divs, layer_divs = root.find_all("div", class_="outputs"), root.find_all("div", class_="layers")
    assert len(outputs_divs) == len(j["cases"]) and len(layer_divs) == len(j["cases"]), len(outputs_divs)
    greens = reds = 0
    for case, od, ld in zip(j["cases"], outputs_divs, layer_divs):
        for want, div, label in ((case["outputs"], od, lambda o: o["name"]),
                                 (case["layers"], ld, lambda l: "%s (%s)" % (l["node"], l["op"]))):
            drawn = bars(div)
            assert [d[0] for d in drawn] == [label(x) for x in want], (drawn, want)
            for x, (_, g) in zip(want, drawn):
                assert bar_fill(g) == (GREEN if x["pass"] else RED), (x["name"], bar_fill(g))
                greens += x["pass"]
                reds += not x["pass"]
                shown = g.find_all("title")[0].all_text()
                ratio = x["tolerance_ratio"]
                assert shown.split(": ")[-1].startswith(("%.4g" % ratio) if not isinstance(ratio, str) else ratio), \
                    (shown, ratio)
        framed = [lab for lab, g in bars(ld) if "stroke" in g.find_all("rect")[0].attrs]
        first = case["first_divergence"]
        expect = ["%s (%s)" % (x["node"], x["op"]) for x in case["layers"] if x["node"] == first][:1] if first else []
        assert framed == expect, (framed, first)
    assert greens and reds, "the test's rule should pass some tensors and fail others (%d, %d)" % (greens, reds)
    print("greens %d reds %d" % (greens, reds))


if __name__ == "__main__":
    kind, page, report = sys.argv[1:4]
    {"bench": bench, "sweep": sweep, "compare": compare}[kind](page, report)
    print("ok")
