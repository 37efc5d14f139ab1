// brisk: the workbench window.
//   brisk [MODEL] [--tokenizer FILE] [--backend auto|cpu|cuda]
//   brisk [MODEL] --prompt TEXT --screenshot FILE.png --quit-after-ms N
//         [--view playground|chat|ab|settings|telemetry|benchmark|compare|reports|tokens] [--size WxH]
#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>
#include <cstdio>

#include "main_window.h"
#include "screenshot_runner.h"

int main(int argc, char** argv) {
  // --help and --version print and exit: let them work without a display.
  for (int i = 1; i < argc; ++i) {
    const QByteArray a(argv[i]);
    if ((a == "-h" || a == "--help" || a == "-v" || a == "--version" || a == "--help-all") &&
        qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
      qputenv("QT_QPA_PLATFORM", "offscreen");
  }
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("Brisk"));
  QApplication::setApplicationName(QStringLiteral("Brisk"));
  QApplication::setApplicationDisplayName(QStringLiteral("Brisk"));
  QApplication::setApplicationVersion(QStringLiteral(BRISK_VERSION));
  QApplication::setDesktopFileName(QStringLiteral("brisk"));

  QCommandLineParser parser;
  parser.setApplicationDescription(
      QStringLiteral("Brisk: a desktop LLM inference workbench. Opens MODEL (a GGUF file, a "
                     "llama2.c checkpoint or a Hugging Face folder), or the built-in demo model."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(QStringLiteral("model"),
                               QStringLiteral("Model to load (default: demo, the built-in synthetic model)."),
                               QStringLiteral("[MODEL]"));
  QCommandLineOption tokenizer(QStringLiteral("tokenizer"),
                               QStringLiteral("Tokenizer file (needed by llama2.c checkpoints)."),
                               QStringLiteral("FILE"));
  QCommandLineOption prompt(QStringLiteral("prompt"),
                            QStringLiteral("Generate a completion of TEXT once the model is loaded."),
                            QStringLiteral("TEXT"));
  QCommandLineOption maxTokens(QStringLiteral("max-tokens"),
                               QStringLiteral("Max tokens for --prompt (default: the playground's)."),
                               QStringLiteral("N"));
  QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                QStringLiteral("Grab the window into FILE.png after loading (and after "
                                               "the --prompt completion), then quit."),
                                QStringLiteral("FILE.png"));
  QCommandLineOption quitAfter(QStringLiteral("quit-after-ms"),
                               QStringLiteral("Quit after N ms at the latest (grabbing the screenshot "
                                              "first; exit status 1 if the run had not finished)."),
                               QStringLiteral("N"));
  QCommandLineOption view(
      QStringLiteral("view"),
      QStringLiteral("View to show (and run --prompt in): playground (default), chat, "
                     "ab (A/B compare), settings (engine settings), telemetry (runs "
                     "a short workload beside the prompt), benchmark (runs a two-configuration matrix), "
                     "compare (the same, then the Compare view; also: reports), tokens (token chips tinted "
                     "by probability)."),
      QStringLiteral("VIEW"));
  QCommandLineOption size(QStringLiteral("size"), QStringLiteral("Window size, e.g. 1280x800 or 1920x1080."),
                          QStringLiteral("WxH"));
  QCommandLineOption dtype(QStringLiteral("dtype"),
                           QStringLiteral("Weight precision: auto (as stored), f32, f16, bf16, q8_0, int8, "
                                          "fp8-e4m3, fp8-e5m2 (converted at load)."),
                           QStringLiteral("TYPE"));
  QCommandLineOption kvDtype(QStringLiteral("kv-dtype"),
                             QStringLiteral("KV cache precision: f32, f16, bf16, fp8-e4m3, int8."),
                             QStringLiteral("TYPE"));
  QCommandLineOption w8a8(QStringLiteral("w8a8"), QStringLiteral("With int8 weights: INT8 activations too."));
  QCommandLineOption int8Fma(
      QStringLiteral("int8-fma"),
      QStringLiteral("With int8 weights: widen them to F32 for FMAs instead of W8A24."));
  QCommandLineOption fp8Fma(
      QStringLiteral("fp8-fma"),
      QStringLiteral("With fp8 weights: widen them to F32 for FMAs instead of BF16 dot products."));
  QCommandLineOption backend(
      QStringLiteral("backend"),
      QStringLiteral("Backend: auto (CUDA when a device is available, else the CPU), cpu "
                     "or cuda."),
      QStringLiteral("NAME"));
  parser.addOptions({tokenizer, prompt, maxTokens, screenshot, quitAfter, view, size, dtype, kvDtype, w8a8,
                     int8Fma, fp8Fma, backend});
  parser.process(app);

  const QStringList positional = parser.positionalArguments();
  if (positional.size() > 1) {
    std::fprintf(stderr, "brisk: one MODEL at most (got %lld)\n", static_cast<long long>(positional.size()));
    return 2;
  }
  auto intOption = [&](const QCommandLineOption& o, const char* name, int* out) {
    if (!parser.isSet(o)) return true;
    bool ok = false;
    *out = parser.value(o).toInt(&ok);
    if (!ok || *out <= 0) {
      std::fprintf(stderr, "brisk: --%s needs a positive integer, got '%s'\n", name,
                   parser.value(o).toLocal8Bit().constData());
      return false;
    }
    return true;
  };
  ScreenshotRunner::Options run;
  if (!intOption(quitAfter, "quit-after-ms", &run.deadlineMs) ||
      !intOption(maxTokens, "max-tokens", &run.maxTokens))
    return 2;
  if (parser.isSet(view) && !ScreenshotRunner::parseView(parser.value(view), &run.view)) {
    std::fprintf(stderr,
                 "brisk: --view must be playground, chat, ab, settings, telemetry, benchmark, compare, "
                 "reports or tokens, got '%s'\n",
                 parser.value(view).toLocal8Bit().constData());
    return 2;
  }
  QSize windowSize;
  if (parser.isSet(size)) {
    const QStringList wh = parser.value(size).toLower().split(QLatin1Char('x'));
    bool okW = false, okH = false;
    if (wh.size() == 2) windowSize = QSize(wh[0].toInt(&okW), wh[1].toInt(&okH));
    if (!okW || !okH || windowSize.width() < 200 || windowSize.height() < 150) {
      std::fprintf(stderr, "brisk: --size needs WIDTHxHEIGHT (at least 200x150), got '%s'\n",
                   parser.value(size).toLocal8Bit().constData());
      return 2;
    }
  }
  run.screenshot = parser.value(screenshot);
  run.prompt = parser.value(prompt);
  const bool scripted =
      !run.screenshot.isEmpty() || run.deadlineMs > 0 || !run.prompt.isEmpty() || parser.isSet(view);

  // Scripted runs use the defaults and leave the user's settings alone.
  MainWindow window(/*persistState=*/!scripted);
  if (windowSize.isValid()) window.resize(windowSize);
  window.show();

  int exitCode = 0;
  if (scripted) {
    auto* runner = new ScreenshotRunner(&window, run, &window);
    QObject::connect(runner, &ScreenshotRunner::finished, &app, [&exitCode](int code) {
      exitCode = code;
      QApplication::exit(code);
    });
    runner->start();
  }
  // Nothing chosen: the built-in demo model. The engine settings are the
  // ones last used (the defaults for scripted runs).
  brisk::EngineConfig config = window.configFor(
      positional.isEmpty() ? QStringLiteral("demo") : positional.first(), parser.value(tokenizer));
  if (parser.isSet(dtype)) config.weight_dtype = parser.value(dtype).toStdString();
  if (parser.isSet(kvDtype)) config.kv_dtype = parser.value(kvDtype).toStdString();
  if (parser.isSet(w8a8)) config.int8_activations = true;
  if (parser.isSet(int8Fma)) config.int8_fma = true;
  if (parser.isSet(fp8Fma)) config.fp8_fma = true;
  if (parser.isSet(backend)) config.backend = parser.value(backend).toStdString();
  if (const std::string e = config.validate(); !e.empty()) {
    std::fprintf(stderr, "brisk: %s\n", e.c_str());
    return 2;
  }
  window.loadModel(config);
  const int rc = app.exec();
  return scripted ? exitCode : rc;
}
