// Codes 0..LEVELS carry values (layerscope/wire/quantize.py LEVELS).
export const LEVELS = 250;
