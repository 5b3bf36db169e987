-- hallpass schema, version 11: reserved. A placeholder on the `passkeys` branch, which was
-- written while another branch added version 11; the merge takes that branch's 0011 in
-- place of this file. Changes nothing.
DO 0;
