export { ADVANCE_X, ADVANCE_Y, FONT, FONT_CHARS, GLYPH_HEIGHT, GLYPH_WIDTH } from "./font.js";
export {
  COLOURS,
  type Colour,
  drawShape,
  encodePng,
  generateSynthetic,
  POSITIONS,
  SHAPES,
  type Shape,
  type ShapeObject,
  SYNTHETIC_TASKS,
  type SyntheticExample,
  type SyntheticOptions,
  type SyntheticTask,
  syntheticExample,
  type WriteSyntheticOptions,
  writeSyntheticCauldron,
} from "./generate.js";
export { Canvas, type Rgb, textSize } from "./raster.js";
