#include "metatypes.h"

void registerBriskMetaTypes() {
  qRegisterMetaType<brisk::EngineConfig>("brisk::EngineConfig");
  qRegisterMetaType<brisk::FinishReason>("brisk::FinishReason");
  qRegisterMetaType<brisk::MetricsSnapshot>("brisk::MetricsSnapshot");
  qRegisterMetaType<brisk::ModelInfo>("brisk::ModelInfo");
  qRegisterMetaType<brisk::SamplingParams>("brisk::SamplingParams");
  qRegisterMetaType<GenerationStats>("GenerationStats");
  qRegisterMetaType<brisk::StepMetrics>("brisk::StepMetrics");
  qRegisterMetaType<brisk::KvBlockState>("brisk::KvBlockState");
  qRegisterMetaType<brisk::BenchResult>("brisk::BenchResult");
  qRegisterMetaType<brisk::MatrixProgress>("brisk::MatrixProgress");
  qRegisterMetaType<TokenAlternatives>("TokenAlternatives");
  qRegisterMetaType<QVector<brisk::StepMetrics>>("QVector<brisk::StepMetrics>");
  qRegisterMetaType<QVector<brisk::KvBlockState>>("QVector<brisk::KvBlockState>");
}
