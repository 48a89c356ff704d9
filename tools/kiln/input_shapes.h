// kiln run / bench compile for the inputs they are given: a .npy input fixes the shape of
// that model input (unless --shape names it), so symbolic dims become constants and the
// shape-specialized schedules (Winograd, static memory plan, ...) apply.
#pragma once
#include <map>
#include <string>

#include "compiler/compiler.h"

namespace kiln {

// Adds to opts.input_shapes the shape of every given input whose dtype, rank and fixed
// dims agree with the model (a mismatch is left for CompiledModel::run to report).
void pin_given_input_shapes(const Model &m, const std::map<std::string, Tensor> &inputs, CompileOptions &opts);

}  // namespace kiln
