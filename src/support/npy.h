// NumPy .npy v1/v2 reading and writing (C order, little-endian; all kiln numeric dtypes
// and bool). Malformed files raise user_error naming the file and the problem.
#pragma once
#include <string>

#include "support/tensor.h"

namespace kiln {

Tensor read_npy(const std::string &path);
void write_npy(const std::string &path, const Tensor &t);

}  // namespace kiln
