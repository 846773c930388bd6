#!/usr/bin/env python3
"""check_layers.py on a two-layer tree it must pass, and on the same tree with one upward include, one upward
call and one internal include in the CLI, each of which it must report. Usage: check_layers_test.py CXX"""
import os
import subprocess
import sys
import tempfile
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_layers.py")
CXX = sys.argv.pop(1) if len(sys.argv) > 1 else "c++"


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text)


def archive(root, layer, sources):
    objects = []
    for source in sources:
        obj = os.path.join(root, os.path.basename(source) + ".o")
        subprocess.run([CXX, "-c", "-I", os.path.join(root, "src"), os.path.join(root, "src", source), "-o", obj],
                       check=True)
        objects.append(obj)
    path = os.path.join(root, f"lib{layer}.a")
    subprocess.run(["ar", "rcs", path] + objects, check=True)
    return f"{layer}={path}"


class CheckLayers(unittest.TestCase):
    def make_tree(self, root, low_calls_high=False, low_includes_high=False, cli_includes_low=False):
        write(root, "src/layers.txt", "# layer | folders | uses\nlow | low | -\nhigh | high | low\n")
        write(root, "src/low/low.h", "int low_value();\n")
        write(root, "src/high/high.h", '#include "low/low.h"\nint high_value();\n')
        write(root, "src/high/high.cpp", '#include "high/high.h"\nint high_value() { return low_value() + 1; }\n')
        include = '#include "high/high.h"\n' if low_includes_high else ""
        body = "int high_value();\nint low_value() { return high_value(); }\n" if low_calls_high else \
            "int low_value() { return 1; }\n"
        write(root, "src/low/low.cpp", include + body)
        write(root, "tools/main.cpp", ('#include "low/low.h"\n' if cli_includes_low else "") + "int main() {}\n")
        archives = [archive(root, "low", ["low/low.cpp"]), archive(root, "high", ["high/high.cpp"])]
        return subprocess.run([sys.executable, CHECKER, os.path.join(root, "src"), os.path.join(root, "tools")] +
                              archives, capture_output=True, text=True)

    def test_a_clean_tree_passes(self):
        with tempfile.TemporaryDirectory() as root:
            result = self.make_tree(root)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("2 archives checked, 0 problems", result.stdout)

    def test_an_upward_include_fails(self):
        with tempfile.TemporaryDirectory() as root:
            result = self.make_tree(root, low_includes_high=True)
            self.assertEqual(result.returncode, 1)
            self.assertIn("layer 'low' includes \"high/high.h\" of layer 'high'", result.stdout)

    def test_an_upward_call_fails(self):
        with tempfile.TemporaryDirectory() as root:
            result = self.make_tree(root, low_calls_high=True)
            self.assertEqual(result.returncode, 1)
            self.assertIn("kiln_low (low.cpp.o) needs high_value() from kiln_high", result.stdout)

    def test_the_cli_including_an_internal_header_fails(self):
        with tempfile.TemporaryDirectory() as root:
            result = self.make_tree(root, cli_includes_low=True)
            self.assertEqual(result.returncode, 1)
            self.assertIn("tools/main.cpp:1: a client of the public API includes the internal header \"low/low.h\"",
                          result.stdout)


if __name__ == "__main__":
    unittest.main()
