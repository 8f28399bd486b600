// SPDX-License-Identifier: MIT
// The Catch2 main shared by every unit test program.
#define CATCH_CONFIG_MAIN
#include "test/unit/catch.h"
