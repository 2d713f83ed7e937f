// The tiny task every pool runs in the pool benchmark (piscina, tinypool).
export default function increment(x) {
  return x + 1;
}
