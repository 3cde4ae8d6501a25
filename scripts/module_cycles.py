#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a circle.

Usage: scripts/module_cycles.py CRATE_SRC_DIR. Every `use` (not `pub use`: a re-export only
passes a name on) and every `crate::`/`super::` path outside comments and tests is an edge to the
file that defines the item, following `pub use` re-exports to it. Prints each cycle found.
"""
import re,os,sys
root=sys.argv[1] if len(sys.argv) > 1 else '.'
os.chdir(root)
root='.'
mods={}
for d,_,fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p=os.path.join(d,f)[2:]
        parts=p[:-3].split('/')
        if parts[-1] in ('mod','lib'): parts=parts[:-1]
        mods['::'.join(parts)]=p
def strip_tests(s):
    i=s.find('#[cfg(test)]')
    return s if i<0 else s[:i]
def uses(s):
    out=[]
    for m in re.finditer(r'^\s*(pub(\([^)]*\))?\s+)?use\s+([^;]+);',s,re.M):
        out.append((bool(m.group(1)),re.sub(r'\s+','',m.group(3))))
    return out
def expand(tree,prefix=''):
    # expand a use tree like crate::a::{b,c::{d}}
    i=tree.find('{')
    if i<0: return [prefix+tree]
    head=tree[:i]; body=tree[i+1:-1]
    parts=[];depth=0;cur=''
    for ch in body:
        if ch==',' and depth==0: parts.append(cur);cur='';continue
        if ch=='{':depth+=1
        if ch=='}':depth-=1
        cur+=ch
    if cur: parts.append(cur)
    r=[]
    for p in parts: r+=expand(p,prefix+head)
    return r
defs={}; reexp={}
src={}
for m,p in mods.items():
    s=strip_tests(open(p).read()); s=re.sub(r'//.*','',s); src[m]=s
    defs[m]=set(re.findall(r'^\s*pub(?:\([^)]*\))?\s+(?:struct|enum|trait|type|fn|const|static)\s+(\w+)',s,re.M))
    reexp[m]={}
    for pub,t in uses(s):
        if not pub: continue
        for path in expand(t):
            path=path.split('as')[0] if '::' in path else path
            segs=path.split('::')
            reexp[m][segs[-1]]=segs
def absolute(m,segs):
    if segs[0]=='crate': return segs[1:]
    if segs[0]=='super':
        base=m.split('::')[:-1]
        segs=segs[1:]
        while segs and segs[0]=='super': base=base[:-1]; segs=segs[1:]
        return base+segs
    if segs[0]=='self': return m.split('::')+segs[1:]
    # relative to current module (child mod)
    cand=(m+'::' if m else '')+segs[0]
    if cand in mods: return (m.split('::') if m else [])+segs
    return None
def resolve(segs,depth=0):
    # returns module defining item
    if depth>10: return None
    mod=''
    i=0
    while i<len(segs):
        nxt=(mod+'::' if mod else '')+segs[i]
        if nxt in mods: mod=nxt; i+=1
        else: break
    if i>=len(segs) or segs[i] in ('self','*'): return mod
    name=segs[i]
    if name in defs.get(mod,()): return mod
    if name in reexp.get(mod,{}):
        t=absolute(mod,reexp[mod][name])
        if t: return resolve(t,depth+1)
    return mod
edges={m:set() for m in mods}
for m,s in src.items():
    paths=[]
    for pub,t in uses(s):
        if pub: continue
        paths+=expand(t)
    paths+=re.findall(r'(?<![\w:])(crate(?:::\w+)+)',re.sub(r'^\s*(pub(\([^)]*\))?\s+)?use\s+[^;]+;','',s,flags=re.M))
    for path in paths:
        segs=path.split('::')
        if segs[0] not in ('crate','super','self') and not ((m+'::' if m else '')+segs[0]) in mods: continue
        a=absolute(m,segs)
        if a is None: continue
        t=resolve(a)
        if t is not None and t!=m: edges[m].add(t)
# cycle detection
color={};stack=[];cycles=[]
def dfs(u):
    color[u]=1;stack.append(u)
    for v in edges[u]:
        if color.get(v)==1: cycles.append(stack[stack.index(v):]+[v])
        elif not color.get(v): dfs(v)
    stack.pop();color[u]=2
for m in mods:
    if not color.get(m): dfs(m)
for c in cycles: print(' -> '.join(x or 'lib' for x in c))
print(len(mods), "modules,", sum(len(e) for e in edges.values()), "imports,", len(cycles), "cycles")
sys.exit(1 if cycles else 0)
