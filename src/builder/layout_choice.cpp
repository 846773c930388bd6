#include "builder/layout_choice.h"

namespace kiln {

bool use_channels_last(ConvLayoutChoice choice) { return choice != ConvLayoutChoice::kNCHW; }

}  // namespace kiln
