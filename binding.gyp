# node-gyp entry point, for tools that only speak node-gyp (`node-gyp rebuild`, prebuildify's
# default backend). It compiles nothing itself: its one target runs the CMake build
# (scripts/build-addon.mjs -> cmake-js), so CMakeLists.txt stays the only description of the
# sources, flags and optional CUDA/TensorRT detection. Listing the sources here instead would have
# duplicated all of that and drifted.
#
# The addon lands where node-gyp puts its products and where loaders (node-gyp-build, prebuildify,
# src/native/addon.ts) look: build/Release/spleen_trt.node. cmake-js works in build/cmake-gyp
# because node-gyp's own Makefile lives in build/ during this build.
#
# Prefer `npm run build:addon`, or `npm run prebuildify` for prebuilds (prebuildify with
# scripts/prebuild-backend.mjs in node-gyp's place); note that node-gyp itself fetches Node's
# headers unless given --nodedir, which the cmake-js path never needs.
{
  'targets': [
    {
      'target_name': 'spleen_trt',
      'type': 'none',
      'actions': [
        {
          'action_name': 'cmake_js_build',
          'inputs': ['<(module_root_dir)/CMakeLists.txt'],
          'outputs': ['<(module_root_dir)/build/Release/spleen_trt.node'],
          'action': [
            'node', '<(module_root_dir)/scripts/build-addon.mjs',
            '--force', '--require', '--out', '<(module_root_dir)/build/cmake-gyp',
          ],
        },
      ],
    },
  ],
}
