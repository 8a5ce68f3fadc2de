// SPDX-License-Identifier: MIT
// ReadLog.java - reads HdrHistogram interval logs with the Java library's
// own HistogramLogReader (Debian's libhdrhistogram-java) and prints what it
// finds, for tests/hdr_java.py to compare with echo-bench's C histogram:
//   interval FILE_INDEX START_MS END_MS MAX_FIELD COUNT MIN MAX P0 P50 P90 P99 P99.9 P100
// per interval, then the same for every interval of every file added into
// one histogram ("merged", without the timestamps), as when logs from
// several load generators are combined.
// Run as a single source file: java -cp hdrhistogram.jar ReadLog.java LOG...
import java.io.File;
import java.util.Locale;
import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogReader;

public class ReadLog {
    static String stats(Histogram h) {
        StringBuilder s = new StringBuilder();
        s.append(h.getTotalCount()).append(' ').append(h.getMinValue()).append(' ')
                .append(h.getMaxValue());
        for (double p : new double[] {0, 50, 90, 99, 99.9, 100})
            s.append(' ').append(h.getValueAtPercentile(p));
        return s.toString();
    }

    public static void main(String[] args) throws Exception {
        Histogram merged = new Histogram(3);
        for (int f = 0; f < args.length; f++) {
            HistogramLogReader reader = new HistogramLogReader(new File(args[f]));
            EncodableHistogram e;
            while ((e = reader.nextIntervalHistogram()) != null) {
                Histogram h = (Histogram) e;
                System.out.println(String.format(Locale.US, "interval %d %d %d %s", f,
                        h.getStartTimeStamp(), h.getEndTimeStamp(), stats(h)));
                merged.add(h);
            }
        }
        System.out.println("merged " + stats(merged));
    }
}
