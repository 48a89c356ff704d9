// Textual form of the Loop IR, for --print-after, `kiln inspect --ir` and tests.
#pragma once
#include <ostream>
#include <string>

#include "loop/ir.h"

namespace kiln {

std::string to_string(const Expr &e);
std::string to_string(const Stmt &s);
std::ostream &operator<<(std::ostream &os, const Expr &e);
std::ostream &operator<<(std::ostream &os, const Stmt &s);

}  // namespace kiln
