export * from './api.js';
export * from './errors.js';
export * from './frame.js';
export * from './messages.js';
export * from './token.js';
export * from './tensor.js';
export * from './policy.js';
export * from './control.js';
