package models

// Default is the model Earshot uses when none is named: the gateway's --default-model,
// the transcriber's --models, the pre-recorded and phone APIs, `earshot transcribe` and
// `earshot bench`. `make model` installs it (README.md: the default model).
const Default = "tiny.en"
