// The headers that most of RocksDB's ~340 source files parse (counted with `clang++ -MM`),
// compiled once into a precompiled header by scripts/rocksdb/cxx.sh. Only headers that guard
// themselves and depend on no macro a source file sets before including them belong here.
// Adding the internal headers that more than half of the files include (db/dbformat.h,
// util/coding.h, ...) saved only 1.5% more, so they stay out.
#include <cstdint>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "port/port.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/options_type.h"

