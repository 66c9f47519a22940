// JS surface of the oneDNN CPU backend (core/onednn_network.h): onednnInfo() and
// createOnednnNetwork(spec) -> { run(input, batch, dims) -> Promise<{ logits, dims }> }.
#pragma once

#include <napi.h>

namespace spleen_trt {

void RegisterOnednn(Napi::Env env, Napi::Object exports);

}  // namespace spleen_trt
