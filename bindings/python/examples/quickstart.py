"""The quick start of the original panns README, unchanged except `range` for `xrange`."""

from panns import *

p1 = PannsIndex(dimension=100, metric="euclidean")  # create an index of Euclidean distance
for i in range(1000):  # generate a 1000 x 100 dataset
    v = gaussian_vector(100)
    p1.add_vector(v)
p1.parallelize(True)  # use multicore
p1.build(64)  # build an index of 64 binary trees
p1.save("test.idx")  # save the index to disk
p2 = PannsIndex(metric="euclidean")
p2.load("test.idx")
v1 = gaussian_vector(100)
n = p2.query(v1, 10)  # returns a list of (id, distance) tuples

print(n)
