// kiln._kiln.ExecutionContext: numpy runs through ExecutionContext::infer, DLPack (torch CUDA) tensors are
// bound in place and run with enqueue() on the caller's stream. The GIL is released while the engine runs.
#include <cstring>

#ifdef KILN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "context_handle.h"

namespace kiln::python {

namespace {

Status invalid(const std::string& message) { return Status(StatusCode::kInvalidArgument, message); }

const TensorDesc* find(const std::vector<TensorDesc>& descs, const std::string& name) {
  for (const auto& d : descs)
    if (d.name == name) return &d;
  return nullptr;
}

std::string names(const std::vector<TensorDesc>& descs) {
  std::string s;
  for (const auto& d : descs) s += (s.empty() ? "'" : ", '") + d.name + "'";
  return s;
}

std::string type_name(py::handle obj) { return Py_TYPE(obj.ptr())->tp_name; }

std::string device_text(int type, int id) {
  if (type == 1) return "cpu";
  if (type == 2) return "cuda:" + std::to_string(id);
  return "DLPack device type " + std::to_string(type) + ":" + std::to_string(id);
}

void check_dtype(const char* what, const std::string& name, DType expected, DType given, const std::string& given_text) {
  if (expected == given) return;
  throw StatusError(invalid(std::string(what) + " '" + name + "' expects " + user_dtype_name(expected) + " but got " +
                            (given == DType::kUndefined ? given_text : user_dtype_name(given)) +
                            "; convert it first (numpy: .astype(numpy." + user_dtype_name(expected) +
                            "), torch: .to(torch." + user_dtype_name(expected) + ")): kiln never casts silently"));
}

py::dict infer_numpy(ContextHandle& h, const py::dict& feeds, const py::object& out) {
  const Engine& e = h.engine();
  std::map<std::string, Tensor> inputs;
  std::vector<py::array> keep;  // the arrays whose memory the tensors wrap
  for (auto item : feeds) {
    const std::string name = py::str(item.first);
    py::array arr = py::array::ensure(item.second, py::array::c_style);
    if (!arr)
      throw StatusError(invalid("input '" + name + "' must be a numpy array (or convertible by numpy.asarray), got " +
                                type_name(item.second)));
    const DType dt = array_dtype(arr);
    if (const TensorDesc* d = find(e.inputs(), name))
      check_dtype("input", name, d->dtype, dt, std::string(py::str(arr.dtype())));
    std::vector<int64_t> dims(arr.shape(), arr.shape() + arr.ndim());
    // Inputs are only read; const_cast lets read-only arrays in without a copy.
    inputs[name] = Tensor::wrap(dt, dims, const_cast<void*>(arr.data()));
    keep.push_back(std::move(arr));
  }
  Result<std::map<std::string, Tensor>> r = Status(StatusCode::kInternal, "infer did not run");
  {
    auto lock = h.claim();
    h.bound_by = std::thread::id();
    py::gil_scoped_release nogil;
    r = h.ctx().infer(inputs);
  }
  auto outputs = unwrap(std::move(r));
  py::dict given_out = out.is_none() ? py::dict() : py::dict(out);
  for (auto item : given_out) {
    const std::string name = py::str(item.first);
    auto it = outputs.find(name);
    if (it == outputs.end())
      throw StatusError(Status(StatusCode::kNotFound,
                               "out: the engine has no output '" + name + "'; its outputs are " + names(e.outputs())));
    const Tensor& t = it->second;
    if (!py::isinstance<py::array>(item.second))
      throw StatusError(invalid("out['" + name + "'] must be a numpy array, got " + type_name(item.second)));
    py::array dst = py::reinterpret_borrow<py::array>(item.second);
    check_dtype("output", name, t.dtype(), array_dtype(dst), std::string(py::str(dst.dtype())));
    std::vector<int64_t> dims(dst.shape(), dst.shape() + dst.ndim());
    if (dims != t.dims())
      throw StatusError(invalid("out['" + name + "'] has shape " + dims_to_string(dims) + " but the output is " +
                                dims_to_string(t.dims())));
    if (!(dst.flags() & py::array::c_style) || !dst.writeable())
      throw StatusError(invalid("out['" + name + "'] must be a writeable C-contiguous array"));
    if (t.nbytes()) std::memcpy(dst.mutable_data(), t.raw(), t.nbytes());
  }
  py::dict result;
  for (const auto& d : e.outputs()) {
    if (given_out.contains(d.name))
      result[py::str(d.name)] = given_out[py::str(d.name)];
    else
      result[py::str(d.name)] = to_numpy(outputs.at(d.name));
  }
  return result;
}

// The checks every bound tensor passes: its dtype is the engine's, it lives where the engine runs, contiguous.
void check_view(ContextHandle& h, const DlpackView& v, const char* what, const std::string& name, DType expected) {
  check_dtype(what, name, expected, v.dtype, v.dtype_text);
  const bool want_cuda = h.is_cuda();
  if (want_cuda && (v.device_type != 2 || v.device_id != h.device()))
    throw StatusError(invalid(std::string(what) + " '" + name + "' is on " + device_text(v.device_type, v.device_id) +
                              " but this context runs on cuda:" + std::to_string(h.device()) +
                              "; move it with .to('cuda:" + std::to_string(h.device()) + "')"));
  if (!want_cuda && v.device_type != 1)
    throw StatusError(invalid(std::string(what) + " '" + name + "' is on " + device_text(v.device_type, v.device_id) +
                              " but this is a CPU engine; pass host memory (numpy or .cpu())"));
  if (!v.contiguous)
    throw StatusError(invalid(std::string(what) + " '" + name + "' is not contiguous; pass .contiguous()"));
}

DlpackView device_view(ContextHandle& h, py::handle obj, const char* what, const std::string& name, DType expected,
                       bool known_on_gpu) {
  DlpackView v = dlpack_view(obj, name, known_on_gpu);
  check_view(h, v, what, name, expected);
  return v;
}

// A tensor given by its fields, (name, address, dims, dtype name, device index (-1: host), contiguous), as
// torch hands them out (data_ptr(), shape, dtype, get_device(), is_contiguous()): reading those costs a
// fraction of a __dlpack__ export, which a per-call budget of microseconds cannot afford.
DlpackView pointer_view(ContextHandle& h, py::handle item, const char* what, std::string& name,
                        const std::vector<TensorDesc>& descs, size_t& index) {
  if (!py::isinstance<py::tuple>(item) || py::len(item) != 6)
    throw StatusError(invalid(std::string(what) + "s are (name, address, dims, dtype, device, contiguous) tuples"));
  auto t = py::reinterpret_borrow<py::tuple>(item);
  name = t[0].cast<std::string>();
  index = 0;
  while (index < descs.size() && descs[index].name != name) ++index;
  if (index == descs.size())
    throw StatusError(Status(StatusCode::kNotFound,
                             "the engine has no " + std::string(what) + " '" + name + "'; its " + what + "s are " +
                                 names(descs)));
  DlpackView v;
  v.data = reinterpret_cast<void*>(t[1].cast<uintptr_t>());
  v.dims = t[2].cast<std::vector<int64_t>>();
  v.dtype_text = t[3].cast<std::string>();
  v.dtype = parse_dtype(v.dtype_text).value_or(DType::kUndefined);
  const int device = t[4].cast<int>();
  v.device_type = device < 0 ? 1 : 2;
  v.device_id = device < 0 ? 0 : device;
  v.contiguous = t[5].cast<bool>();
  check_view(h, v, what, name, descs[index].dtype);
  int64_t elements = 1;
  for (int64_t d : v.dims) {
    if (d < 0)
      throw StatusError(invalid(std::string(what) + " '" + name + "' has a negative dim " + std::to_string(d)));
    if (d != 0 && elements > INT64_MAX / d)
      throw StatusError(invalid(std::string(what) + " '" + name + "': its element count overflows int64"));
    elements *= d;
  }
  const size_t width = dtype_size(v.dtype);
  if (width && static_cast<uint64_t>(elements) > SIZE_MAX / width)
    throw StatusError(invalid(std::string(what) + " '" + name + "': its byte size overflows"));
  v.nbytes = static_cast<size_t>(elements) * width;
  return v;
}

// Binds one input in place (shape and address) and records its dims in the call's signature.
void bind_input_view(ContextHandle& h, size_t index, DlpackView v, std::vector<std::vector<int64_t>>& signature,
                     std::vector<bool>& seen) {
  const std::string& name = h.engine().inputs()[index].name;
  check(h.ctx().set_input_shape(name, v.dims));
  check(h.ctx().set_tensor_address(name, v.data, v.nbytes));
  signature[index] = std::move(v.dims);
  seen[index] = true;
}

// After every input is bound: an input not given is an error; returns each output's dims for the caller.
py::list finish_inputs(ContextHandle& h, const std::vector<std::vector<int64_t>>& signature,
                       const std::vector<bool>& seen) {
  const Engine& e = h.engine();
  for (size_t i = 0; i < seen.size(); ++i)
    if (!seen[i])
      throw StatusError(invalid("input '" + e.inputs()[i].name + "' (" + user_dtype_name(e.inputs()[i].dtype) + " " +
                                e.inputs()[i].shape.to_string() + ") was not given"));
  h.bound_by = std::this_thread::get_id();
  const auto& dims = h.output_dims_for(signature);
  py::list out;
  for (size_t i = 0; i < dims.size(); ++i) out.append(py::make_tuple(e.outputs()[i].name, py::tuple(py::cast(dims[i]))));
  return out;
}

// Binds DLPack inputs in place (shape and address) and returns each output's dims for the caller to allocate.
py::list bind_inputs(ContextHandle& h, const py::dict& feeds, bool known_on_gpu) {
  const Engine& e = h.engine();
  auto lock = h.claim();
  std::vector<std::vector<int64_t>> signature(e.inputs().size());
  std::vector<bool> seen(e.inputs().size(), false);
  for (auto item : feeds) {
    const std::string name = py::str(item.first);
    const auto& ins = e.inputs();
    size_t i = 0;
    while (i < ins.size() && ins[i].name != name) ++i;
    if (i == ins.size())
      throw StatusError(Status(StatusCode::kNotFound,
                               "the engine has no input '" + name + "'; its inputs are " + names(ins)));
    bind_input_view(h, i, device_view(h, item.second, "input", name, ins[i].dtype, known_on_gpu), signature, seen);
  }
  return finish_inputs(h, signature, seen);
}

// bind_inputs for tensors given by their fields (see pointer_view): the torch CUDA path of ctx.infer.
py::list bind_input_pointers(ContextHandle& h, const py::list& feeds) {
  const Engine& e = h.engine();
  auto lock = h.claim();
  std::vector<std::vector<int64_t>> signature(e.inputs().size());
  std::vector<bool> seen(e.inputs().size(), false);
  std::string name;
  size_t i = 0;
  for (auto item : feeds) {
    DlpackView v = pointer_view(h, item, "input", name, e.inputs(), i);
    bind_input_view(h, i, std::move(v), signature, seen);
  }
  return finish_inputs(h, signature, seen);
}

// The inputs must have been bound by this thread, with nothing between: another thread's binding would run
// this call on its shapes.
void claim_binding(ContextHandle& h) {
  if (h.bound_by != std::this_thread::get_id())
    throw StatusError(invalid("this ExecutionContext's inputs were bound by another thread (or not at all) since "
                              "this thread bound them; give each thread its own context (engine.create_context())"));
  h.bound_by = std::thread::id();
}

void enqueue_without_gil(ContextHandle& h, uintptr_t stream) {
  Status s;
  {
    py::gil_scoped_release nogil;
    s = h.ctx().enqueue(reinterpret_cast<void*>(stream));
  }
  check(s);
}

// Binds the caller's (or freshly allocated) DLPack outputs and enqueues on STREAM.
void bind_outputs_and_enqueue(ContextHandle& h, const py::dict& outs, uintptr_t stream, bool known_on_gpu) {
  const Engine& e = h.engine();
  auto lock = h.claim();
  claim_binding(h);
  for (const auto& d : e.outputs()) {
    py::str key(d.name);
    if (!outs.contains(key)) throw StatusError(invalid("output '" + d.name + "' has no tensor to write into"));
    DlpackView v = device_view(h, outs[key], "output", d.name, d.dtype, known_on_gpu);
    check(h.ctx().set_tensor_address(d.name, v.data, v.nbytes));
  }
  enqueue_without_gil(h, stream);
}

// bind_outputs_and_enqueue for tensors given by their fields (see pointer_view).
void bind_output_pointers_and_enqueue(ContextHandle& h, const py::list& outs, uintptr_t stream) {
  const Engine& e = h.engine();
  auto lock = h.claim();
  claim_binding(h);
  std::vector<bool> seen(e.outputs().size(), false);
  std::string name;
  size_t i = 0;
  for (auto item : outs) {
    DlpackView v = pointer_view(h, item, "output", name, e.outputs(), i);
    check(h.ctx().set_tensor_address(name, v.data, v.nbytes));
    seen[i] = true;
  }
  for (size_t k = 0; k < seen.size(); ++k)
    if (!seen[k]) throw StatusError(invalid("output '" + e.outputs()[k].name + "' has no tensor to write into"));
  enqueue_without_gil(h, stream);
}

py::dict run_info(const ContextHandle& h) {
  RunInfo r = const_cast<ContextHandle&>(h).ctx().last_run_info();
  py::dict d;
  d["cuda_graph"] = r.cuda_graph;
  d["arena"] = r.arena;
  d["not_captured"] = r.not_captured;
  d["arena_bytes"] = r.arena_bytes;
  d["gpu_nodes"] = r.gpu_nodes;
  d["host_nodes"] = r.host_nodes;
  d["fallback_nodes"] = r.fallback_nodes;
  d["downloads"] = r.downloads;
  d["cached_plans"] = r.cached_plans;
  d["plan_cache_limit"] = r.plan_cache_limit;
  d["value_keyed_inputs"] = py::cast(r.value_keyed_inputs);
  d["bundle_member"] = r.bundle_member;
  return d;
}

}  // namespace

std::shared_ptr<ContextHandle> ContextHandle::create(const Engine& engine) {
  ExecutionContext ctx = unwrap(engine.create_context());
  int device = -1;
#ifdef KILN_WITH_CUDA
  if (engine.info().backend == BackendKind::kCuda && cudaGetDevice(&device) != cudaSuccess) device = 0;
#endif
  return std::make_shared<ContextHandle>(engine, std::move(ctx), device);
}

std::unique_lock<std::mutex> ContextHandle::claim() {
  std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
  if (!lock.owns_lock())
    throw StatusError(invalid("this ExecutionContext is running in another thread; give each thread its own "
                              "context (engine.create_context())"));
  return lock;
}

const std::vector<std::vector<int64_t>>& ContextHandle::output_dims_for(const std::vector<std::vector<int64_t>>& in) {
  auto it = output_dims_.find(in);
  if (it != output_dims_.end()) return it->second;
  std::vector<std::vector<int64_t>> dims;
  for (const auto& d : engine_.outputs()) dims.push_back(unwrap(ctx_.output_shape(d.name)));
  return output_dims_.emplace(in, std::move(dims)).first->second;
}

void bind_context(py::module_& m) {
  py::class_<ContextHandle, std::shared_ptr<ContextHandle>>(m, "ExecutionContext",
                                                            "Per-thread run state (kiln.ExecutionContext wraps it).")
      .def_property_readonly("device", &ContextHandle::device)
      .def("set_profile", [](ContextHandle& h, int i) { check(h.ctx().set_profile(i)); })
      .def("profile", [](ContextHandle& h) { return h.ctx().profile(); })
      .def("set_input_shape",
           [](ContextHandle& h, const std::string& name, const std::vector<int64_t>& dims) {
             check(h.ctx().set_input_shape(name, dims));
           })
      .def("output_shape", [](ContextHandle& h, const std::string& name) {
        return py::tuple(py::cast(unwrap(h.ctx().output_shape(name))));
      })
      .def("set_tensor_address",
           [](ContextHandle& h, const std::string& name, uintptr_t address, size_t nbytes) {
             check(h.ctx().set_tensor_address(name, reinterpret_cast<void*>(address), nbytes));
           })
      .def("enqueue",
           [](ContextHandle& h, uintptr_t stream) {
             auto lock = h.claim();
             Status s;
             {
               py::gil_scoped_release nogil;
               s = h.ctx().enqueue(reinterpret_cast<void*>(stream));
             }
             check(s);
           })
      .def("enqueue_repeated",
           [](ContextHandle& h, int iterations, uintptr_t stream) {
             // For measuring the Python layer's overhead: the bare C++ enqueue loop, no Python per call.
             auto lock = h.claim();
             Status s;
             {
               py::gil_scoped_release nogil;
               for (int i = 0; i < iterations && s.ok(); ++i) s = h.ctx().enqueue(reinterpret_cast<void*>(stream));
             }
             check(s);
           })
      .def("infer_numpy", &infer_numpy)
      .def("bind_inputs", &bind_inputs, py::arg("feeds"), py::arg("known_on_gpu") = false)
      .def("bind_outputs_and_enqueue", &bind_outputs_and_enqueue, py::arg("outs"), py::arg("stream"),
           py::arg("known_on_gpu") = false)
      .def("bind_input_pointers", &bind_input_pointers, py::arg("feeds"))
      .def("bind_output_pointers_and_enqueue", &bind_output_pointers_and_enqueue, py::arg("outs"), py::arg("stream"))
      .def("last_run_info", &run_info)
      .def("set_cuda_graphs", [](ContextHandle& h, bool on) { h.ctx().set_cuda_graphs(on); })
      .def("cuda_graphs", [](ContextHandle& h) { return h.ctx().cuda_graphs(); })
      .def("set_device_memory_limit", [](ContextHandle& h, size_t bytes) { h.ctx().set_device_memory_limit(bytes); })
      .def("device_memory_bytes", [](ContextHandle& h) { return h.ctx().device_memory_bytes(); });
}

}  // namespace kiln::python
