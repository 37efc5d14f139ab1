// The backend choices (Auto, then every backend this build knows) as the
// engine settings and the A/B second engine offer them: one that cannot run
// here stays listed, disabled, its tooltip saying why (brisk::list_backends).
// Item data: the EngineConfig::backend value ("auto", "cpu", "cuda").
#pragma once

class QComboBox;

void fillBackendCombo(QComboBox* combo);
