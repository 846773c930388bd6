// The public API's boundary: errors are values there, so an exception from below (std::bad_alloc from a host
// allocation, anything a library throws) becomes a Status naming the call instead of crossing into the caller,
// where it would end the process.
#pragma once
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>

#include "kiln/status.h"

namespace kiln {

Status exception_status(std::string_view call, const std::exception* e, bool out_of_memory);

// fn returns Status or Result<T>; what it throws is turned into that type.
template <class F>
auto no_throw(std::string_view call, F&& fn) -> std::invoke_result_t<F> {
  try {
    return fn();
  } catch (const std::bad_alloc& e) {
    return exception_status(call, &e, true);
  } catch (const std::exception& e) {
    return exception_status(call, &e, false);
  } catch (...) {
    return exception_status(call, nullptr, false);
  }
}

}  // namespace kiln
