#!/usr/bin/env node
// Runs after `npm install`: converts the face models shipped inside npm packages into ONNX files
// in the cache folder. In a fresh git clone the TypeScript is not compiled yet at this point;
// `npm run prepare` (which npm runs next) builds it and then calls this script again.
'use strict';
const path = require('node:path');
const fs = require('node:fs');

const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
if (process.env.FACEFLOW_SKIP_MODEL_BUILD) {
  console.log('faceflow: FACEFLOW_SKIP_MODEL_BUILD is set, not building models');
  process.exit(0);
}
if (!fs.existsSync(cli)) process.exit(0);
const { runCli } = require(cli);
runCli(['models', 'build']).then((code) => {
  if (code !== 0)
    console.error("faceflow: some models could not be built; 'npx faceflow models build' says why");
  process.exitCode = code;
});
