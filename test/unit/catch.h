// SPDX-License-Identifier: MIT
// NAME
//   catch.h - the one place the unit tests include Catch2 from
#pragma once

#include <catch2/catch.hpp>
