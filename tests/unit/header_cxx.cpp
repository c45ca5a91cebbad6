// header_cxx.cpp — proves include/locara.h compiles as C++ (it is built, never run).
#include "locara.h"

int lc_header_cxx_probe();
int lc_header_cxx_probe() { return static_cast<int>(LC_OK) + static_cast<int>(sizeof(lc_batch)); }
