// fmt-formatted Status constructors for kiln internals.
#pragma once
#include <fmt/format.h>

#include "kiln/status.h"

namespace kiln {

template <class... A>
Status make_error(StatusCode code, fmt::format_string<A...> f, A&&... a) {
  return Status(code, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
Status invalid_argument(fmt::format_string<A...> f, A&&... a) {
  return make_error(StatusCode::kInvalidArgument, f, std::forward<A>(a)...);
}
template <class... A>
Status invalid_model(fmt::format_string<A...> f, A&&... a) {
  return make_error(StatusCode::kInvalidModel, f, std::forward<A>(a)...);
}
template <class... A>
Status unsupported(fmt::format_string<A...> f, A&&... a) {
  return make_error(StatusCode::kUnsupported, f, std::forward<A>(a)...);
}
template <class... A>
Status not_found(fmt::format_string<A...> f, A&&... a) {
  return make_error(StatusCode::kNotFound, f, std::forward<A>(a)...);
}
template <class... A>
Status internal_error(fmt::format_string<A...> f, A&&... a) {
  return make_error(StatusCode::kInternal, f, std::forward<A>(a)...);
}

}  // namespace kiln
