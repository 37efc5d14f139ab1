// What the window shows about one finished request. Measured by
// EngineController on the engine thread, when each output is delivered.
#pragma once
#include <QString>

#include "brisk/request_output.h"

struct GenerationStats {
  int promptTokens = 0;
  int outputTokens = 0;
  double ttftMs = -1;           // submit -> first generated token; -1 when none
  double e2eMs = -1;            // submit -> finished
  double tokensPerSecond = -1;  // decode rate after the first token; -1 when < 2 tokens
  brisk::FinishReason finishReason = brisk::FinishReason::None;
  QString error;                // the engine's message when finishReason == Error
};
