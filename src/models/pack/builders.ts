import * as path from 'node:path';
import { registerBuilder } from './build';

/**
 * Every converter, registered under the `builder` name the source manifests use. Importing this
 * module is what makes `buildModels` able to build anything.
 */
registerBuilder('tfjs-graph', async (files, _source, rewrites) => {
  const { convertTfjsGraph } = await import('../tfjs/convert');
  const modelJson = files.find((f) => f.endsWith('.json'));
  if (!modelJson) throw new Error('tfjs-graph needs the model.json among its files');
  return (await convertTfjsGraph(modelJson, { rewrites })).onnx;
});

registerBuilder('faceapi-recognition', async (files) => {
  const { buildFaceApiRecognitionOnnx } = await import('../faceapi/recognitionNet');
  return buildFaceApiRecognitionOnnx(sourceDir(files)).onnx;
});

registerBuilder('faceapi-ssd', async (files) => {
  const { buildFaceApiSsdOnnx } = await import('../faceapi/ssdMobilenet');
  return buildFaceApiSsdOnnx(sourceDir(files)).onnx;
});

/** face-api builders read their manifest and shards from the folder the checked files are in. */
function sourceDir(files: string[]): string {
  return path.dirname(files[0]);
}
