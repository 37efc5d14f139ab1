// The brisk types that travel through signals (queued ones included).
#pragma once
#include <QMetaType>
#include <QVector>

#include "brisk/bench_matrix.h"
#include "brisk/benchmark.h"
#include "brisk/engine.h"
#include "brisk/engine_config.h"
#include "brisk/metrics.h"
#include "brisk/model_info.h"
#include "brisk/request_output.h"
#include "brisk/sampling_params.h"
#include "generation_stats.h"
#include "token_alternative.h"

Q_DECLARE_METATYPE(brisk::EngineConfig)
Q_DECLARE_METATYPE(brisk::FinishReason)
Q_DECLARE_METATYPE(brisk::MetricsSnapshot)
Q_DECLARE_METATYPE(brisk::ModelInfo)
Q_DECLARE_METATYPE(brisk::SamplingParams)
Q_DECLARE_METATYPE(GenerationStats)
Q_DECLARE_METATYPE(brisk::StepMetrics)
Q_DECLARE_METATYPE(brisk::KvBlockState)
Q_DECLARE_METATYPE(brisk::BenchResult)
Q_DECLARE_METATYPE(brisk::MatrixProgress)
Q_DECLARE_METATYPE(TokenAlternatives)

// Registers the types above with qRegisterMetaType (idempotent).
void registerBriskMetaTypes();
