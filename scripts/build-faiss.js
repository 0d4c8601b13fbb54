#!/usr/bin/env node
/**
 * Optional install step: builds faiss-node (the FAISS vector search bindings) against the system's
 * FAISS library (Debian: `apt-get install libfaiss-dev cmake libopenblas-dev`).
 *
 * faiss-node is deliberately not a dependency: its own install script downloads a prebuilt binary
 * from GitHub, then falls back to a git clone of FAISS, and nothing may be fetched from outside the
 * npm registry. This script fetches the pinned faiss-node sources from the npm registry
 * (`npm pack`), replaces its CMakeLists.txt by one that links the system FAISS (instead of the
 * vendored `deps/faiss`, and without the post-build copies of libopenblas/libgfortran), adds an
 * `idx_t` shim for FAISS 1.7.3, compiles it with cmake-js (a registry package; Node's headers come
 * from the `node-api-headers` package it depends on) and installs the result in
 * `.cache/faiss-node/addon`, outside node_modules so that a later `npm install` does not prune it.
 * `src/gallery/faissIndex.ts` loads it from there.
 *
 * It never fails the install: whatever happens, it prints one line and exits 0, and faceflow
 * falls back to its exact (typed array) vector index.
 *
 *   node scripts/build-faiss.js            build when possible (no-op when already built)
 *   FACEFLOW_SKIP_FAISS=1                  skip
 *   FACEFLOW_FAISS_PREFIX=/opt/faiss       where FAISS is installed (default /usr)
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const CACHE = path.join(ROOT, '.cache', 'faiss-node');
const TARGET = path.join(CACHE, 'addon');
/** The faiss-node release these sources and `src/gallery/faissIndex.ts` are written for. */
const FAISS_NODE_VERSION = '0.5.1';
const LOG = path.join(CACHE, 'build.log');
const PREFIX = process.env.FACEFLOW_FAISS_PREFIX || '/usr';
const INCLUDE = path.join(PREFIX, 'include');
const HINT = 'apt-get install -y libfaiss-dev cmake libopenblas-dev';

function say(message) {
  console.log(`faceflow: faiss-node ${message}`);
}

function log(text) {
  fs.mkdirSync(CACHE, { recursive: true });
  fs.appendFileSync(LOG, text.endsWith('\n') ? text : `${text}\n`);
}

/** Runs a command, logging its output; throws with a short message when it fails. */
function run(command, args, cwd, timeoutMs = 600_000) {
  log(`$ (${cwd}) ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: process.env });
  log(`${result.stdout || ''}${result.stderr || ''}`);
  if (result.error) throw new Error(`${path.basename(command)}: ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`${path.basename(command)} ${args[0]} exited with ${result.status}`);
  return result.stdout || '';
}

/** Whether `dir` holds a faiss-node that loads and works, checked in a separate process. */
function works(dir) {
  if (!fs.existsSync(path.join(dir, 'build', 'Release', 'faiss-node.node'))) return false;
  const probe =
    'const f = require(process.argv[1]); const i = new f.IndexFlatIP(2); i.add([1, 0]);' +
    'if (i.search([1, 0], 1).labels[0] !== 0) process.exit(1);';
  const result = spawnSync(process.execPath, ['-e', probe, dir], { encoding: 'utf8', timeout: 60_000 });
  return result.status === 0;
}

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).status === 0;
}

const CMAKELISTS = `# Written by faceflow's scripts/build-faiss.js: links the system FAISS instead of deps/faiss.
cmake_minimum_required(VERSION 3.17 FATAL_ERROR)
cmake_policy(SET CMP0091 NEW)
cmake_policy(SET CMP0042 NEW)
project(faiss-node LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
add_definitions(-DNAPI_VERSION=6)
include_directories(\${CMAKE_JS_INC})
file(GLOB SOURCE_FILES "src/*.cc" "src/*.h")
add_library(\${PROJECT_NAME} SHARED \${SOURCE_FILES} \${CMAKE_JS_SRC})
set_target_properties(\${PROJECT_NAME} PROPERTIES PREFIX "" SUFFIX ".node")
target_include_directories(\${PROJECT_NAME} PRIVATE "\${CMAKE_SOURCE_DIR}/node_modules/node-addon-api")
if(EXISTS "\${CMAKE_SOURCE_DIR}/faiss_idx_shim.h")
  target_compile_options(\${PROJECT_NAME} PRIVATE -include "\${CMAKE_SOURCE_DIR}/faiss_idx_shim.h")
endif()
find_package(OpenMP REQUIRED)
find_package(faiss CONFIG QUIET)
if(faiss_FOUND)
  target_link_libraries(\${PROJECT_NAME} \${CMAKE_JS_LIB} faiss OpenMP::OpenMP_CXX)
else()
  find_package(BLAS REQUIRED)
  find_package(LAPACK REQUIRED)
  find_library(FAISS_LIBRARY faiss REQUIRED)
  target_include_directories(\${PROJECT_NAME} PRIVATE "${INCLUDE}")
  target_link_libraries(\${PROJECT_NAME} \${CMAKE_JS_LIB} \${FAISS_LIBRARY} OpenMP::OpenMP_CXX
    \${LAPACK_LIBRARIES} \${BLAS_LIBRARIES})
endif()
`;

const SHIM = '#include <faiss/Index.h>\nnamespace faiss { using idx_t = Index::idx_t; }\n';

function build() {
  const spec = FAISS_NODE_VERSION;
  fs.rmSync(LOG, { force: true });
  const work = path.join(CACHE, 'src');
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });

  // The sources: npm's own fetch (from its cache when offline).
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const packed = run(npm, ['pack', `faiss-node@${spec}`, '--silent', '--pack-destination', CACHE], CACHE)
    .trim()
    .split('\n')
    .pop();
  run('tar', ['xzf', path.join(CACHE, packed), '-C', work, '--strip-components=1'], CACHE);

  // Patches: no install script, no prebuild-install, the system FAISS, the idx_t shim.
  const pkgFile = path.join(work, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
  delete pkg.scripts;
  delete pkg.devDependencies;
  if (pkg.dependencies) delete pkg.dependencies['prebuild-install'];
  fs.writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
  fs.writeFileSync(path.join(work, 'CMakeLists.txt'), CMAKELISTS);
  const metricHeader = path.join(INCLUDE, 'faiss', 'MetricType.h');
  const hasIdx = fs.existsSync(metricHeader) && /using\s+idx_t\b/.test(fs.readFileSync(metricHeader, 'utf8'));
  if (!hasIdx) fs.writeFileSync(path.join(work, 'faiss_idx_shim.h'), SHIM);
  // faiss-node 0.5.1's search never frees its copy of the query (4 bytes a dimension, every search: 4 KiB per
  // 1024-d search, about 3 MiB a minute for one camera). Free it once FAISS is done with it.
  const source = path.join(work, 'src', 'faiss.cc');
  const code = fs.readFileSync(source, 'utf8');
  const searchCall = 'index_->search(nq, xq, k, D, I);';
  if (!code.includes(searchCall))
    throw new Error('faiss-node sources changed: the search leak patch does not apply');
  fs.writeFileSync(source, code.replace(searchCall, `${searchCall}\n    delete[] xq;`));

  run(
    npm,
    ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock'],
    work,
  );
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [ROOT] });
  const defines = process.env.FACEFLOW_FAISS_PREFIX ? [`--CDCMAKE_PREFIX_PATH=${PREFIX}`] : [];
  run(process.execPath, [cmakeJs, 'compile', '--log-level', 'warn', ...defines], work);
  fs.rmSync(path.join(work, 'build', 'CMakeFiles'), { recursive: true, force: true });
  if (!works(work)) throw new Error('the built addon does not load');

  fs.rmSync(TARGET, { recursive: true, force: true });
  fs.cpSync(work, TARGET, { recursive: true });
  fs.rmSync(work, { recursive: true, force: true });
  if (!works(TARGET)) throw new Error('the installed addon does not load');
  fs.writeFileSync(path.join(TARGET, PATCH_MARK), `${PATCHES}\n`);
}

// Bumped whenever the patches change, so that an addon built with older ones is built again.
const PATCHES = 'faceflow-patches 2: idx_t shim, search frees its query';
const PATCH_MARK = 'FACEFLOW_PATCHES';
const patched = () => {
  try {
    return fs.readFileSync(path.join(TARGET, PATCH_MARK), 'utf8').trim() === PATCHES;
  } catch {
    return false;
  }
};

function main() {
  if (process.env.FACEFLOW_SKIP_FAISS)
    return say('skipped (FACEFLOW_SKIP_FAISS is set); using the exact index');
  if (works(TARGET) && patched()) return say('ready');
  if (!fs.existsSync(path.join(INCLUDE, 'faiss', 'Index.h'))) {
    return say(`skipped: no FAISS in ${PREFIX} (optional; for it: ${HINT}); using the exact index`);
  }
  if (!onPath('cmake'))
    return say(`skipped: cmake not found (optional; for it: ${HINT}); using the exact index`);
  const started = Date.now();
  try {
    build();
    say(`built against ${PREFIX} FAISS in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } catch (error) {
    say(`build failed (${error.message}; log: ${path.relative(ROOT, LOG)}); using the exact index`);
  }
}

try {
  main();
} catch (error) {
  say(`step failed (${error && error.message}); using the exact index`);
}
