// PointwiseChain on the GPU: CUDA C++ generated from the node's program for its dtypes (f32/f16/bf16 storage,
// bool Where conditions; math in f32), compiled once per (program, constants, dtypes, arch) by NVRTC
// (nvrtc_compile.h). One thread per output element (a few with vectors):
//   - flat: every input is the output's size or a single element, and the pointers are aligned: VEC elements
//     per thread with 8/16-byte loads and stores (VEC = 16 bytes of the widest storage type);
//   - broadcast: anything else: per-input strides over the output's dims, collapsed to the fewest dims
//     (innermost first), 32-bit index math when everything fits.
// The generated source carries the program as a comment; constants are baked in as exact bit patterns. The
// f32 formulas are those of unary.cu/binary.cu, so a fused chain computes what the unfused kernels would,
// minus the rounding of f16/bf16 intermediates (the CPU reference does the same: see its file comment).
#include <fmt/format.h>

#include <cstring>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/ew_common.cuh"
#include "backends/cuda/kernels/pointwise_chain.h"
#include "backends/cuda/nvrtc_compile.h"
#include "ops/pointwise_chain.h"

namespace kiln::cuda {

namespace {

using ops::PwFn;
using ops::PwOperand;

constexpr int kMaxRank = 8;

// ---- Source generation.

const char* storage_type(DType d) {
  switch (d) {
    case DType::kF32:
      return "float";
    case DType::kF16:
    case DType::kBF16:
      return "unsigned short";
    default:
      return "unsigned char";  // bool
  }
}

std::string load_expr(DType d, const std::string& v) {
  switch (d) {
    case DType::kF32:
      return v;
    case DType::kF16:
      return "ld_f16(" + v + ")";
    case DType::kBF16:
      return "ld_bf16(" + v + ")";
    default:
      return "(" + v + " != 0 ? 1.0f : 0.0f)";
  }
}

std::string store_expr(DType d, const std::string& v) {
  switch (d) {
    case DType::kF16:
      return "st_f16(" + v + ")";
    case DType::kBF16:
      return "st_bf16(" + v + ")";
    default:
      return v;
  }
}

// The f32 expression of one step; a[i] are its operands' expressions.
std::string step_expr(PwFn fn, const std::vector<std::string>& a) {
  const std::string& x = a[0];
  switch (fn) {
    case PwFn::kAdd:
      return x + " + " + a[1];
    case PwFn::kSub:
      return x + " - " + a[1];
    case PwFn::kMul:
      return x + " * " + a[1];
    case PwFn::kDiv:
      return x + " / " + a[1];
    case PwFn::kPow:
      return "powf(" + x + ", " + a[1] + ")";
    case PwFn::kMax:
      return "k_max(" + x + ", " + a[1] + ")";
    case PwFn::kMin:
      return "k_min(" + x + ", " + a[1] + ")";
    case PwFn::kPRelu:
      return x + " < 0.f ? " + x + " * " + a[1] + " : " + x;
    case PwFn::kRelu:
      return x + " > 0.f ? " + x + " : 0.f";
    case PwFn::kSigmoid:
      return "1.0f / (1.0f + expf(-" + x + "))";
    case PwFn::kTanh:
      return "tanhf(" + x + ")";
    case PwFn::kErf:
      return "erff(" + x + ")";
    case PwFn::kExp:
      return "expf(" + x + ")";
    case PwFn::kLog:
      return "logf(" + x + ")";
    case PwFn::kSqrt:
      return "sqrtf(" + x + ")";
    case PwFn::kNeg:
      return "-" + x;
    case PwFn::kAbs:
      return "fabsf(" + x + ")";
    case PwFn::kReciprocal:
      return "1.0f / " + x;
    case PwFn::kSoftplus:
      return x + " > 30.f ? " + x + " : log1pf(expf(" + x + "))";
    case PwFn::kHardSwish:
      return "k_hard_swish(" + x + ")";
    case PwFn::kGelu:
      return "0.5f * " + x + " * (1.0f + erff(" + x + " * 0.70710678118654752440f))";
    case PwFn::kGeluTanh:
      return "k_gelu_tanh(" + x + ")";
    case PwFn::kLeakyRelu:
      return x + " >= 0.f ? " + x + " : " + x + " * " + a[1];
    case PwFn::kElu:
      return x + " >= 0.f ? " + x + " : " + a[1] + " * expm1f(" + x + ")";
    case PwFn::kHardSigmoid:
      return "k_hard_sigmoid(" + x + ", " + a[1] + ", " + a[2] + ")";
    case PwFn::kClip:
      return x + " < " + a[1] + " ? " + a[1] + " : (" + x + " > " + a[2] + " ? " + a[2] + " : " + x + ")";
    case PwFn::kWhere:
      return x + " != 0.f ? " + a[1] + " : " + a[2];
    case PwFn::kCastF16:
      return "ld_f16(st_f16(" + x + "))";
    case PwFn::kCastBF16:
      return "ld_bf16(st_bf16(" + x + "))";
    case PwFn::kCastF32:
    case PwFn::kCastF64:
      return x;  // f64 chains never reach the GPU (see supports)
  }
  return x;
}

// Helpers every generated kernel starts with: no headers (NVRTC needs none for these), f16 through PTX cvt,
// bf16 by bits (round to nearest even, NaN kept quiet).
constexpr const char* kPrelude = R"(
template <class T, int N> struct alignas(sizeof(T) * N) Pack { T v[N]; };
__device__ __forceinline__ float ld_f16(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ unsigned short st_f16(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float ld_bf16(unsigned short h) { return __uint_as_float(((unsigned)h) << 16); }
__device__ __forceinline__ unsigned short st_bf16(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}
__device__ __forceinline__ float k_nan() { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ float k_max(float a, float b) { return (a != a || b != b) ? k_nan() : (a > b ? a : b); }
__device__ __forceinline__ float k_min(float a, float b) { return (a != a || b != b) ? k_nan() : (a < b ? a : b); }
__device__ __forceinline__ float k_hard_sigmoid(float x, float a, float b) {
  float v = a * x + b;
  if (v != v) return 1.f;  // std::max(0, std::min(1, NaN)) is 1 on the CPU
  v = v < 1.f ? v : 1.f;
  return 0.f < v ? v : 0.f;
}
__device__ __forceinline__ float k_hard_swish(float x) {
  float v = x / 6.0f + 0.5f;
  v = v < 1.f ? v : 1.f;
  v = 0.f < v ? v : 0.f;
  return x * v;
}
__device__ __forceinline__ float k_gelu_tanh(float x) {  // 0.5x(1 + tanh u) == x / (1 + exp(-2u))
  const float u = 0.79788456080286535588f * (x + 0.044715f * x * x * x);
  return x / (1.0f + expf(-2.0f * u));
}
)";

struct Signature {
  std::vector<DType> in, out;
  int vec = 4;
};

std::string generate_source(const ops::PwProgram& p, const std::vector<float>& consts, const Signature& sig,
                            const std::string& program_text) {
  const int nin = static_cast<int>(sig.in.size()), nout = static_cast<int>(sig.out.size());
  std::string s = "// kiln PointwiseChain: " + program_text + "\n";
  s += kPrelude;
  for (int c = 0; c < p.num_constants; ++c) {
    uint32_t bits;
    std::memcpy(&bits, &consts[c], 4);
    s += fmt::format("#define c{} __int_as_float(0x{:08x}) /* {} */\n", c, bits, consts[c]);
  }
  // The chain: f32 in, f32 out.
  s += fmt::format("__device__ __forceinline__ void chain(const float (&x)[{}], float (&y)[{}]) {{\n", nin,
                   nout);
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const ops::PwStep& st = p.steps[i];
    std::vector<std::string> args;
    for (const PwOperand& a : st.args) {
      if (a.kind == PwOperand::Kind::kInput)
        args.push_back(fmt::format("x[{}]", a.index));
      else if (a.kind == PwOperand::Kind::kConst)
        args.push_back(fmt::format("c{}", a.index));
      else
        args.push_back(fmt::format("v{}", a.index));
    }
    s += fmt::format("  const float v{} = {};  // {}\n", i, step_expr(st.fn, args), st.name);
  }
  for (int k = 0; k < nout; ++k) s += fmt::format("  y[{}] = v{};\n", k, p.output_steps[k]);
  s += "}\n";
  std::string params;
  for (int k = 0; k < nin; ++k)
    params += fmt::format("const {}* __restrict__ p{}, ", storage_type(sig.in[k]), k);
  for (int k = 0; k < nout; ++k) params += fmt::format("{}* __restrict__ q{}, ", storage_type(sig.out[k]), k);
  // Flat kernel: bit k of `scalar` says input k is one element.
  const int V = sig.vec;
  s += fmt::format(
      "extern \"C\" __global__ void __launch_bounds__(256) kiln_pw_flat({}long long n, unsigned scalar) {{\n",
      params);
  s += "  const long long stride = (long long)gridDim.x * blockDim.x;\n";
  s += "  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n";
  s += fmt::format("  const long long nvec = n / {};\n", V);
  s += fmt::format("  float x[{}], y[{}];\n", nin, nout);
  s += "  for (long long v = t; v < nvec; v += stride) {\n";
  for (int k = 0; k < nin; ++k) {
    const char* T = storage_type(sig.in[k]);
    s += fmt::format("    Pack<{0}, {1}> a{2};\n    if (scalar & {3}u) {{ const {0} s = p{2}[0];\n", T, V, k,
                     1u << k);
    s += fmt::format("      #pragma unroll\n      for (int j = 0; j < {}; ++j) a{}.v[j] = s; }}\n", V, k);
    s += fmt::format("    else a{1} = reinterpret_cast<const Pack<{0}, {2}>*>(p{1})[v];\n", T, k, V);
  }
  for (int k = 0; k < nout; ++k) s += fmt::format("    Pack<{}, {}> r{};\n", storage_type(sig.out[k]), V, k);
  s += fmt::format("    #pragma unroll\n    for (int j = 0; j < {}; ++j) {{\n", V);
  for (int k = 0; k < nin; ++k)
    s += fmt::format("      x[{}] = {};\n", k, load_expr(sig.in[k], fmt::format("a{}.v[j]", k)));
  s += "      chain(x, y);\n";
  for (int k = 0; k < nout; ++k)
    s += fmt::format("      r{}.v[j] = {};\n", k, store_expr(sig.out[k], fmt::format("y[{}]", k)));
  s += "    }\n";
  for (int k = 0; k < nout; ++k)
    s += fmt::format("    reinterpret_cast<Pack<{0}, {1}>*>(q{2})[v] = r{2};\n", storage_type(sig.out[k]), V,
                     k);
  s += "  }\n";
  s += fmt::format("  for (long long i = nvec * {} + t; i < n; i += stride) {{\n", V);
  for (int k = 0; k < nin; ++k)
    s += fmt::format("    x[{}] = {};\n", k,
                     load_expr(sig.in[k], fmt::format("p{0}[(scalar & {1}u) ? 0 : i]", k, 1u << k)));
  s += "    chain(x, y);\n";
  for (int k = 0; k < nout; ++k)
    s += fmt::format("    q{0}[i] = {1};\n", k, store_expr(sig.out[k], fmt::format("y[{}]", k)));
  s += "  }\n}\n";
  // Broadcast kernels: dims innermost first, per-input element strides (0 where broadcast).
  s += fmt::format("struct Bcast {{ long long rank; long long dims[{0}]; long long strides[{1}][{0}]; }};\n",
                   kMaxRank, nin);
  s += fmt::format(
      "template <class I> __device__ __forceinline__ void bcast_body({}I n, const Bcast& b) {{\n", params);
  s += "  const I stride = (I)gridDim.x * blockDim.x;\n";
  s += fmt::format("  float x[{}], y[{}];\n", nin, nout);
  s += "  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {\n";
  s += fmt::format("    I rem = i, off[{}];\n", nin);
  s += fmt::format("    #pragma unroll\n    for (int k = 0; k < {}; ++k) off[k] = 0;\n", nin);
  s += fmt::format("    #pragma unroll\n    for (int d = 0; d < {}; ++d) {{\n", kMaxRank);
  s += "      if (d == (int)b.rank) break;\n";
  s += "      const I dim = (I)b.dims[d];\n      const I q = rem / dim, r = rem - q * dim;\n";
  s += fmt::format(
      "      #pragma unroll\n      for (int k = 0; k < {}; ++k) off[k] += r * (I)b.strides[k][d];\n", nin);
  s += "      rem = q;\n    }\n";
  for (int k = 0; k < nin; ++k)
    s += fmt::format("    x[{0}] = {1};\n", k, load_expr(sig.in[k], fmt::format("p{}[off[{}]]", k, k)));
  s += "    chain(x, y);\n";
  for (int k = 0; k < nout; ++k)
    s += fmt::format("    q{0}[i] = {1};\n", k, store_expr(sig.out[k], fmt::format("y[{}]", k)));
  s += "  }\n}\n";
  std::string args;
  for (int k = 0; k < nin; ++k) args += fmt::format("p{}, ", k);
  for (int k = 0; k < nout; ++k) args += fmt::format("q{}, ", k);
  for (const char* I : {"unsigned", "unsigned long long"}) {
    s += fmt::format(
        "extern \"C\" __global__ void __launch_bounds__(256) kiln_pw_bcast{}({}{} n, Bcast b) {{\n",
        std::strcmp(I, "unsigned") == 0 ? "32" : "64", params, I);
    s += fmt::format("  bcast_body<{}>({}n, b);\n}}\n", I, args);
  }
  return s;
}

// ---- Host side.

// Broadcast layout of every input against the output: dims innermost first, size-1 output dims dropped,
// adjacent dims merged while every input stays linear across them.
struct Layout {
  bool ok = false;
  std::vector<int64_t> dims;                  // innermost first
  std::vector<std::vector<int64_t>> strides;  // [input][dim]
  bool fits32 = false;
};

Layout make_layout(const std::vector<int64_t>& out, const std::vector<const std::vector<int64_t>*>& ins) {
  Layout L;
  const size_t R = out.size(), N = ins.size();
  std::vector<std::vector<int64_t>> st(R, std::vector<int64_t>(N, 0));
  bool fits = num_elements(out) <= ew::kMax32;
  for (size_t k = 0; k < N; ++k) {
    const auto& d = *ins[k];
    if (d.size() > R) return L;
    int64_t s = 1;
    for (size_t j = d.size(); j-- > 0;) {
      const size_t o = R - d.size() + j;
      if (d[j] != out[o] && d[j] != 1) return L;
      st[o][k] = d[j] == 1 ? 0 : s;
      s *= d[j];
    }
    fits = fits && s <= ew::kMax32;
  }
  L.strides.assign(N, {});
  for (size_t o = R; o-- > 0;) {
    if (out[o] == 1) continue;
    if (!L.dims.empty()) {
      bool merge = true;
      for (size_t k = 0; k < N; ++k) merge = merge && st[o][k] == L.strides[k].back() * L.dims.back();
      if (merge) {
        L.dims.back() *= out[o];
        continue;
      }
    }
    L.dims.push_back(out[o]);
    for (size_t k = 0; k < N; ++k) L.strides[k].push_back(st[o][k]);
  }
  if (L.dims.empty()) {
    L.dims.push_back(1);
    for (auto& s : L.strides) s.push_back(0);
  }
  if (L.dims.size() > static_cast<size_t>(kMaxRank)) return L;
  L.fits32 = fits;
  L.ok = true;
  return L;
}

bool gpu_dtype(DType d) {
  return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16 || d == DType::kBool;
}

// The parsed program with its step dtypes, or an error naming the node.
struct Parsed {
  ops::PwProgram prog;
  std::vector<DType> step_dtypes;
};

Result<Parsed> parse(const ir::Node& node, const std::vector<DType>& in) {
  auto prog = ops::parse_pointwise_program(node.attr_string(ops::kPwProgramAttr, ""));
  if (!prog.ok()) return Status(StatusCode::kInvalidModel, node.label() + ": " + prog.status().message());
  auto dts = ops::pointwise_step_dtypes(*prog, in);
  if (!dts.ok()) return Status(StatusCode::kInvalidModel, node.label() + ": " + dts.status().message());
  return Parsed{std::move(*prog), std::move(*dts)};
}

bool pointwise_chain_supported(const ir::Node& node, const std::vector<DType>& in) {
  if (in.empty() || static_cast<int>(in.size()) > ops::kPwMaxInputs) return false;
  for (DType d : in)
    if (!gpu_dtype(d)) return false;
  auto p = parse(node, in);
  if (!p.ok()) return false;
  for (DType d : p->step_dtypes)
    if (d == DType::kF64) return false;  // f64 chains run on the CPU reference
  return true;
}

// Everything a launch needs besides the data: the parsed program, constants, signature and cache key.
struct Prepared {
  Parsed p;
  std::vector<float> consts;
  Signature sig;
  std::string program, key;
};

Result<Prepared> prepare(const ir::Node& node, const std::vector<DType>& in, const std::vector<DType>& out) {
  Prepared r;
  r.sig.in = in;
  r.sig.out = out;
  KILN_ASSIGN_OR_RETURN(r.p, parse(node, in));
  r.consts = node.attr_floats(ops::kPwConstantsAttr);
  if (static_cast<int>(r.consts.size()) < r.p.prog.num_constants)
    return Status(StatusCode::kInvalidModel,
                  fmt::format("{}: program reads c{} but attribute 'constants' has {} values", node.label(),
                              r.p.prog.num_constants - 1, r.consts.size()));
  if (r.p.prog.output_steps.size() != out.size())
    return Status(StatusCode::kInvalidModel,
                  fmt::format("{}: program writes {} outputs but the node has {}", node.label(),
                              r.p.prog.output_steps.size(), out.size()));
  size_t widest = 1;
  for (DType d : in) widest = std::max(widest, dtype_size(d));
  for (DType d : out) widest = std::max(widest, dtype_size(d));
  r.sig.vec = static_cast<int>(16 / widest);
  r.program = r.p.prog.to_string();
  r.key = r.program + "|";
  for (float c : r.consts) {
    uint32_t b;
    std::memcpy(&b, &c, 4);
    r.key += fmt::format("{:08x},", b);
  }
  for (DType d : in) r.key += std::string(dtype_name(d)) + ",";
  r.key += "->";
  for (DType d : out) r.key += std::string(dtype_name(d)) + ",";
  r.key += std::to_string(r.sig.vec);
  return r;
}

Status run_pointwise_chain(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  const size_t nin = ctx.num_inputs(), nout = ctx.num_outputs();
  std::vector<DType> in_dt, out_dt;
  for (size_t k = 0; k < nin; ++k) in_dt.push_back(ctx.input(k).dtype);
  for (size_t k = 0; k < nout; ++k) out_dt.push_back(ctx.output(k).dtype);
  const int64_t n = ctx.output(0).numel();
  if (n <= 0) return Status();
  KILN_ASSIGN_OR_RETURN(Prepared pre, prepare(node, in_dt, out_dt));
  const Signature& sig = pre.sig;
  KILN_ASSIGN_OR_RETURN(
      const NvrtcKernels* k,
      nvrtc_kernels(
          pre.key, [&] { return generate_source(pre.p.prog, pre.consts, sig, pre.program); },
          {"kiln_pw_flat", "kiln_pw_bcast32", "kiln_pw_bcast64"}, node.label()));

  std::vector<const void*> ptrs;
  for (size_t i = 0; i < nin; ++i) ptrs.push_back(ctx.input(i).data);
  for (size_t i = 0; i < nout; ++i) ptrs.push_back(ctx.output(i).data);
  std::vector<void*> args;
  for (auto& ptr : ptrs) args.push_back(&ptr);

  // Flat when every input is the output's size or one element and every vector access is aligned.
  bool flat = true;
  unsigned scalar = 0;
  for (size_t i = 0; i < nin && flat; ++i) {
    const DeviceTensor& t = ctx.input(i);
    if (t.numel() == 1) {
      scalar |= 1u << i;
    } else {
      flat = t.numel() == n && ew::aligned_to(t.data, static_cast<size_t>(sig.vec) * dtype_size(t.dtype));
    }
  }
  for (size_t i = 0; i < nout && flat; ++i)
    flat = ew::aligned_to(ctx.output(i).data, static_cast<size_t>(sig.vec) * dtype_size(ctx.output(i).dtype));
  cudaStream_t s = ctx.stream();
  if (flat) {
    long long nn = n;
    args.push_back(&nn);
    args.push_back(&scalar);
    KILN_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(k->kernels[0]),
                                     dim3(ew::blocks_for((n + sig.vec - 1) / sig.vec)), dim3(ew::kThreads),
                                     args.data(), 0, s));
    return Status();
  }
  std::vector<const std::vector<int64_t>*> in_dims;
  for (size_t i = 0; i < nin; ++i) in_dims.push_back(&ctx.input(i).dims);
  const Layout L = make_layout(ctx.output(0).dims, in_dims);
  if (!L.ok)
    return ctx.error("cannot broadcast the inputs to {} in at most {} dims",
                     dims_to_string(ctx.output(0).dims), kMaxRank);
  // struct Bcast { long long rank; long long dims[8]; long long strides[nin][8]; }
  std::vector<int64_t> bc(1 + kMaxRank + nin * kMaxRank, 0);
  bc[0] = static_cast<int64_t>(L.dims.size());
  for (size_t d = 0; d < L.dims.size(); ++d) {
    bc[1 + d] = L.dims[d];
    for (size_t i = 0; i < nin; ++i) bc[1 + kMaxRank + i * kMaxRank + d] = L.strides[i][d];
  }
  uint32_t n32 = static_cast<uint32_t>(n);
  unsigned long long n64 = static_cast<unsigned long long>(n);
  args.push_back(L.fits32 ? static_cast<void*>(&n32) : static_cast<void*>(&n64));
  args.push_back(bc.data());
  KILN_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(k->kernels[L.fits32 ? 1 : 2]),
                                   dim3(ew::blocks_for(n)), dim3(ew::kThreads), args.data(), 0, s));
  return Status();
}

}  // namespace

Result<PointwiseChainSource> pointwise_chain_source(const ir::Node& node, const std::vector<DType>& inputs,
                                                    const std::vector<DType>& outputs) {
  KILN_ASSIGN_OR_RETURN(Prepared pre, prepare(node, inputs, outputs));
  return PointwiseChainSource{pre.key, generate_source(pre.p.prog, pre.consts, pre.sig, pre.program)};
}

void register_cuda_pointwise_chain(KernelTable& t) {
  t.add({"PointwiseChain", run_pointwise_chain, pointwise_chain_supported});
}

}  // namespace kiln::cuda
