// JSON objects for the metrics types, shared by every exporter (snapshot,
// benchmark results) so the field names are written in one place.
#pragma once
#include <nlohmann/json.hpp>

#include "brisk/metrics.h"

namespace brisk {

nlohmann::json percentiles_json(const Percentiles& p);
nlohmann::json request_json(const RequestMetrics& r);
nlohmann::json step_json(const StepMetrics& s);

}  // namespace brisk
