/** The module resolve hook register.mjs installs: `electron` is the stand-in. */
let standIn;

export function initialize(data) {
  standIn = data.standIn;
}

export function resolve(specifier, context, next) {
  return specifier === 'electron' ? { url: standIn, shortCircuit: true } : next(specifier, context);
}
