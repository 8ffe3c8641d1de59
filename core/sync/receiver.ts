/**
 * The receiving end of the sync stream, run once per (pod, container) and fed frames on stdin for as long as the
 * pod lives. Perl is the interpreter: it is in every Debian/Ubuntu-based image (perl-base is essential there),
 * whatever language the service is written in. The protocol is described in README.md.
 *
 * Safety, enforced here as well as on devloop's side: relative paths only, no "." or ".." segments; each
 * existing directory on the way to a file must resolve (symlinks followed) inside its root, checked before
 * anything is created; symlink targets must stay inside the root; files are written to a temp file in the same
 * directory and renamed over the destination, so a reader never sees half a file.
 */
export const PROTOCOL_VERSION = 1;
export const READY_LINE = `DEVLOOP-SYNC ${PROTOCOL_VERSION}`;

export const PERL_RECEIVER = String.raw`
use strict; use warnings; use Cwd (); use File::Path ();
binmode STDIN; binmode STDOUT; $| = 1; umask 022;
my @roots = map { my $r = $_; $r =~ s{/+$}{}; $r eq '' ? '/' : $r } @ARGV;
my @real;
for my $r (@roots) {
  File::Path::make_path($r) unless -d $r;
  my $rp = Cwd::realpath($r);
  die "sync root $r is not a directory\n" unless defined $rp && -d $rp;
  push @real, $rp;
}
print "${READY_LINE}\n";
my $seq = 0;
sub readn { my ($len) = @_; my $buf = ''; while (length($buf) < $len) { my $got = read(STDIN, $buf, $len - length($buf), length($buf)); die "stream ended\n" unless $got; } return $buf; }
sub skip { my ($len) = @_; while ($len > 0) { my $n = $len > 65536 ? 65536 : $len; readn($n); $len -= $n; } }
sub report { my ($m) = @_; $m =~ s/[\r\n]+/ /g; print "E $m\n"; }
sub inside { my ($p, $root) = @_; return 1 if $p eq $root; return index($p, $root eq '/' ? '/' : "$root/") == 0; }
sub bad_rel { my ($rel) = @_; return 'empty path' if $rel eq ''; return 'absolute path' if $rel =~ m{^/}; return 'NUL in path' if $rel =~ /\0/;
  for my $s (split m{/}, $rel, -1) { return 'path climbs out with ".."' if $s eq '..'; return 'path is not normalised' if $s eq '.' || $s eq ''; } return undef; }
sub root_of { my ($ri) = @_; die "unknown root $ri\n" unless defined $ri && $ri =~ /^\d+$/ && $ri < @roots; return $ri; }
# Walks to the parent directory of $rel, creating what is missing; undef plus a reason when it would leave the root.
sub parent { my ($ri, $rel, $create) = @_; my @parts = split m{/}, $rel; pop @parts; my $dir = $roots[$ri];
  for my $c (@parts) { $dir = $dir eq '/' ? "/$c" : "$dir/$c";
    if (-e $dir || -l $dir) { my $rp = Cwd::realpath($dir);
      return (undef, "$dir leads outside $roots[$ri]") unless defined $rp && inside($rp, $real[$ri]);
      return (undef, "$dir is not a directory") unless -d $rp; }
    elsif ($create) { mkdir($dir) or return (undef, "mkdir $dir: $!"); }
    else { return (undef, undef); } }
  return ($dir, undef); }
sub dest { my ($ri, $rel) = @_; return $roots[$ri] eq '/' ? "/$rel" : "$roots[$ri]/$rel"; }
while (defined(my $line = <STDIN>)) {
  chomp $line; my ($op, @f) = split / /, $line;
  if ($op eq 'W') {
    my ($ri, $mode, $size, $plen) = @f; root_of($ri); my $rel = readn($plen);
    if (my $why = bad_rel($rel)) { skip($size); report("$rel: refused: $why"); next; }
    my ($dir, $why) = parent($ri, $rel, 1);
    if (!defined $dir) { skip($size); report("$rel: refused: $why"); next; }
    my $target = dest($ri, $rel);
    if (-d $target && !-l $target) { skip($size); report("$rel: $target is a directory"); next; }
    my $tmp = "$dir/.devloop-sync.$$." . (++$seq);
    my $fh;
    if (!open($fh, '>', $tmp)) { skip($size); report("$rel: cannot write $tmp: $!"); next; }
    binmode $fh; my $left = $size; my $ok = 1;
    while ($left > 0) { my $n = $left > 65536 ? 65536 : $left; my $buf = readn($n); $ok &&= print {$fh} $buf; $left -= $n; }
    $ok &&= close($fh);
    if (!$ok) { my $e = $!; unlink $tmp; report("$rel: write failed: $e"); next; }
    chmod(oct($mode), $tmp);
    if (!rename($tmp, $target)) { my $e = $!; unlink $tmp; report("$rel: rename to $target failed: $e"); next; }
  } elsif ($op eq 'L') {
    my ($ri, $plen, $tlen) = @f; root_of($ri); my $rel = readn($plen); my $to = readn($tlen);
    if (my $why = bad_rel($rel)) { report("$rel: refused: $why"); next; }
    my @base = split m{/}, $rel; pop @base; my @t = @base; my $escapes = $to =~ m{^/};
    for my $s (split m{/}, $to) { next if $s eq '' || $s eq '.'; if ($s eq '..') { if (@t) { pop @t } else { $escapes = 1 } } else { push @t, $s } }
    if ($escapes) { report("$rel: refused: symlink to $to points outside $roots[$ri]"); next; }
    my ($dir, $why) = parent($ri, $rel, 1);
    if (!defined $dir) { report("$rel: refused: $why"); next; }
    my $tmp = "$dir/.devloop-sync.$$." . (++$seq);
    if (!symlink($to, $tmp)) { report("$rel: symlink failed: $!"); next; }
    if (!rename($tmp, dest($ri, $rel))) { my $e = $!; unlink $tmp; report("$rel: rename failed: $e"); next; }
  } elsif ($op eq 'D') {
    my ($ri, $plen) = @f; root_of($ri); my $rel = readn($plen);
    if (my $why = bad_rel($rel)) { report("$rel: refused: $why"); next; }
    my ($dir, $why) = parent($ri, $rel, 0);
    if (!defined $dir) { report("$rel: refused: $why") if defined $why; next; }
    my $target = dest($ri, $rel);
    if (-d $target && !-l $target) { File::Path::remove_tree($target, { safe => 1, error => \my $errs }); report("$rel: could not remove everything under $target") if @$errs; }
    elsif (-e $target || -l $target) { unlink($target) or report("$rel: unlink $target failed: $!"); }
  } elsif ($op eq 'S') {
    # Lists every file and symlink under the root (symlinks not followed), hex-encoded, then Z.
    my ($ri) = @f; root_of($ri); my @todo = ('');
    while (@todo) { my $rel = shift @todo; my $dir = $rel eq '' ? $roots[$ri] : dest($ri, $rel); my $dh;
      next unless opendir($dh, $dir);
      for my $n (sort readdir($dh)) { next if $n eq '.' || $n eq '..' || $n =~ /^\.devloop-sync\./; my $r = $rel eq '' ? $n : "$rel/$n"; my $p = "$dir/$n";
        if (-l $p || !-d $p) { print 'F ', unpack('H*', $r), "\n"; } else { push @todo, $r; } }
      closedir($dh); }
    print "Z\n";
  } elsif ($op eq 'B') {
    print "B $f[0]\n";
  } elsif ($op eq 'Q') {
    print "Q\n"; exit 0;
  } else {
    report("protocol: unknown frame '$op'"); exit 2;
  }
}
`;

/** The command that starts the receiver for the given container directories. */
export function receiverCommand(roots: readonly string[]): string[] {
  return ['perl', '-e', PERL_RECEIVER, '--', ...roots];
}
