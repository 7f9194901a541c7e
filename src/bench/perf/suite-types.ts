/** What each section of the performance suite gets and gives. */
export interface SuiteMode {
  /** Seconds-long runs for CI: the suite's machinery is exercised, the numbers mean little. */
  quick: boolean;
  log(line: string): void;
}

export interface SectionResult {
  title: string;
  markdown: string;
  data: unknown;
}
