// The whole public API.
#pragma once
#include "kiln/builder.h"
#include "kiln/context.h"
#include "kiln/dtype.h"
#include "kiln/engine.h"
#include "kiln/shape.h"
#include "kiln/status.h"
#include "kiln/tensor.h"
#include "kiln/device.h"
#include "kiln/version.h"
