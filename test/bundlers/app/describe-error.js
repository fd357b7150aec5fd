/** An error as one string that keeps its stack (the test prints it on failure). */
export function describeError(error) {
  if (error instanceof Error) {
    const stack = error.stack ?? '';
    return stack.includes(error.message) ? stack : `${error.name}: ${error.message}\n${stack}`;
  }
  return String(error);
}
