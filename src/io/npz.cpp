#include "kiln/tensor_io.h"

#include <array>
#include <cstring>

#include "util/error.h"
#include "util/file.h"
#include "util/safe_text.h"

namespace kiln::io {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kEnd64LocatorSig = 0x07064b50;
constexpr uint32_t kMax32 = 0xffffffffu;

uint32_t crc32(const char* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ static_cast<unsigned char>(data[i])) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

// Little-endian reads that fail instead of reading past the archive.
class Reader {
 public:
  Reader(const std::string& b, const std::string& what) : b_(b), what_(what) {}
  bool has(uint64_t off, uint64_t n) const { return off <= b_.size() && n <= b_.size() - off; }
  uint64_t le(uint64_t off, int n) const {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(b_[off + i]);
    return v;
  }
  Status truncated(const char* part) const {
    return invalid_argument("{} is not a valid .npz (truncated {}); save it again with numpy.savez", what_, part);
  }

 private:
  const std::string& b_;
  const std::string& what_;
};

void put(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

}  // namespace

Result<std::vector<std::pair<std::string, Tensor>>> parse_npz(const std::string& bytes, const std::string& what) {
  Reader r(bytes, what);
  if (bytes.size() < 22 || (r.le(0, 4) != kLocalSig && r.le(0, 4) != kEndSig))
    return invalid_argument("{} is not a .npz file (no ZIP header); save arrays with numpy.savez", what);
  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  int64_t end = -1;
  for (int64_t off = static_cast<int64_t>(bytes.size()) - 22;
       off >= 0 && off >= static_cast<int64_t>(bytes.size()) - 22 - 65535; --off)
    if (r.le(off, 4) == kEndSig) {
      end = off;
      break;
    }
  if (end < 0) return r.truncated("end of central directory");
  uint64_t entries = r.le(end + 10, 2), cd_size = r.le(end + 12, 4), cd_off = r.le(end + 16, 4);
  if (entries == 0xffff || cd_size == kMax32 || cd_off == kMax32) {
    if (end < 20 || r.le(end - 20, 4) != kEnd64LocatorSig) return r.truncated("ZIP64 locator");
    const uint64_t z = r.le(end - 20 + 8, 8);
    if (!r.has(z, 56) || r.le(z, 4) != kEnd64Sig) return r.truncated("ZIP64 end record");
    entries = r.le(z + 32, 8);
    cd_size = r.le(z + 40, 8);
    cd_off = r.le(z + 48, 8);
  }
  if (!r.has(cd_off, cd_size)) return r.truncated("central directory");
  std::vector<std::pair<std::string, Tensor>> out;
  uint64_t p = cd_off;
  for (uint64_t e = 0; e < entries; ++e) {
    if (!r.has(p, 46) || r.le(p, 4) != kCentralSig) return r.truncated("central directory entry");
    const uint64_t flags = r.le(p + 8, 2), method = r.le(p + 10, 2), crc = r.le(p + 16, 4);
    uint64_t csize = r.le(p + 20, 4), usize = r.le(p + 24, 4), local = r.le(p + 42, 4);
    const uint64_t name_len = r.le(p + 28, 2), extra_len = r.le(p + 30, 2), comment_len = r.le(p + 32, 2);
    if (!r.has(p + 46, name_len + extra_len + comment_len)) return r.truncated("central directory entry");
    const std::string name = bytes.substr(p + 46, name_len);
    // ZIP64 sizes and offset, in this order, for the fields that hold 0xffffffff.
    for (uint64_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
      const uint64_t id = r.le(x, 2), len = r.le(x + 2, 2);
      if (!r.has(x + 4, len)) return r.truncated("extra field");
      if (id == 1) {
        uint64_t q = x + 4;
        for (uint64_t* f : {&usize, &csize, &local})
          if (*f == kMax32 && q + 8 <= x + 4 + len) {
            *f = r.le(q, 8);
            q += 8;
          }
      }
      x += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    const std::string member = fmt::format("{} member '{}'", what, printable(name));
    if (flags & 1) return unsupported("{} is encrypted", member);
    if (method == 8)
      return unsupported("{} is compressed with deflate (numpy.savez_compressed), which kiln does not read; save "
                         "with numpy.savez, or unzip the archive into .npy files and give that directory",
                         member);
    if (method != 0) return unsupported("{} uses ZIP compression method {}; save with numpy.savez", member, method);
    if (csize != usize) return invalid_argument("{}: stored sizes differ ({} vs {})", member, csize, usize);
    if (!r.has(local, 30) || r.le(local, 4) != kLocalSig) return r.truncated("local header");
    const uint64_t data = local + 30 + r.le(local + 26, 2) + r.le(local + 28, 2);
    if (!r.has(data, usize)) return r.truncated("member data");
    if (crc32(bytes.data() + data, usize) != crc)
      return invalid_argument("{} is corrupt (CRC mismatch); save it again", member);
    std::string key = name;
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    KILN_ASSIGN_OR_RETURN(Tensor t, parse_npy(bytes.substr(data, usize), member));
    out.emplace_back(std::move(key), std::move(t));
  }
  return out;
}

Result<std::vector<std::pair<std::string, Tensor>>> load_npz(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  return parse_npz(bytes, "'" + path + "'");
}

std::string to_npz(const std::vector<std::pair<std::string, Tensor>>& arrays) {
  std::string out, central;
  for (const auto& [key, t] : arrays) {
    const std::string name = key + ".npy", body = to_npy(t);
    const uint32_t crc = crc32(body.data(), body.size());
    const uint64_t offset = out.size();
    auto header = [&](std::string& s, bool is_central) {
      put(s, is_central ? kCentralSig : kLocalSig, 4);
      if (is_central) put(s, 20, 2);  // version made by
      put(s, 20, 2);                  // version needed
      put(s, 0, 2);                   // flags
      put(s, 0, 2);                   // stored
      put(s, 0, 4);                   // time, date
      put(s, crc, 4);
      put(s, body.size(), 4);
      put(s, body.size(), 4);
      put(s, name.size(), 2);
      put(s, 0, 2);  // extra
      if (is_central) {
        put(s, 0, 2);  // comment
        put(s, 0, 2);  // disk
        put(s, 0, 2);  // internal attributes
        put(s, 0, 4);  // external attributes
        put(s, offset, 4);
      }
      s += name;
    };
    header(out, false);
    out += body;
    header(central, true);
  }
  const uint64_t cd_off = out.size();
  out += central;
  put(out, kEndSig, 4);
  put(out, 0, 4);  // disk numbers
  put(out, arrays.size(), 2);
  put(out, arrays.size(), 2);
  put(out, central.size(), 4);
  put(out, cd_off, 4);
  put(out, 0, 2);  // comment
  return out;
}

}  // namespace kiln::io
