#include "beats_kernels.h"
int beats_kernels_placeholder(void) { return 0; }
